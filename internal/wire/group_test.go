package wire

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/nearnet/nearnet/internal/specvec"
)

func unhex2(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleRecord() *GroupRecord {
	id := [16]byte{1, 2, 3}
	return &GroupRecord{ID: id, Epoch: 7, Inc: 9, Status: StatusAlive, Head: 3, Name: "n", Key: []byte{1, 2},
		Addrs: []string{"10.0.0.1:1", "[fe80::1]:2"}, By: id, Sig: []byte{9, 9}}
}

func TestGroupFrameRoundTrip(t *testing.T) {
	r := sampleRecord()
	d := &GroupDataFrame{Origin: r.ID, Epoch: 7, Seq: 4, Dests: [][16]byte{{5}, {6}}, Payload: []byte("p"), Sig: []byte{1}}
	es := []GroupEntry{{Origin: r.ID, Epoch: 7, Next: 5}}
	tagged := *d
	tagged.Tags = []GroupTag{{To: [8]byte{5}, Tag: [TagLen]byte{1, 2}}, {To: [8]byte{6}, Tag: [TagLen]byte{3}}}
	for _, c := range []struct {
		b    []byte
		want *GroupFrame
	}{
		{AppendGroupHello(nil, r, es), &GroupFrame{Kind: GroupHello, Record: r, Entries: es}},
		{AppendGroupData(nil, d), &GroupFrame{Kind: GroupData, Data: d}},
		{AppendGroupData(nil, &tagged), &GroupFrame{Kind: GroupData, Data: &tagged}},
		{AppendGroupMembers(nil, []*GroupRecord{r, r}), &GroupFrame{Kind: GroupMembers, Records: []*GroupRecord{r, r}}},
		{AppendGroupDigest(nil, es), &GroupFrame{Kind: GroupDigest, Entries: es}},
		{AppendGroupPull(nil, es), &GroupFrame{Kind: GroupPull, Entries: es}},
		{[]byte{0x90, 1, 2}, &GroupFrame{Kind: 0x90}},
	} {
		f, err := ParseGroupFrame(c.b)
		if err != nil {
			t.Fatalf("kind %#x: %v", c.b[0], err)
		}
		if !reflect.DeepEqual(f, c.want) {
			t.Errorf("kind %#x: got %+v, want %+v", c.b[0], f, c.want)
		}
	}
}

func TestGroupFrameMalformed(t *testing.T) {
	r := sampleRecord()
	good := AppendGroupMembers(nil, []*GroupRecord{r})
	bad := func(r *GroupRecord) []byte { return AppendGroupMembers(nil, []*GroupRecord{r}) }
	status := *r
	status.Status = 9
	name := *r
	name.Name = "\xff"
	zero := AppendGroupData(nil, &GroupDataFrame{Seq: 0})
	tagged := AppendGroupData(nil, &GroupDataFrame{Seq: 1, Tags: []GroupTag{{To: [8]byte{1}}}})
	noTags := append([]byte{GroupTagged}, AppendGroupData(nil, &GroupDataFrame{Seq: 1})[1:]...)
	noTags = append(noTags, 0, 0)
	for name, b := range map[string][]byte{
		"empty":         {},
		"unknown kind":  {0x07},
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte(nil), good...), 0),
		"status":        bad(&status),
		"name not utf8": bad(&name),
		"seq zero":      zero,
		"tag truncated": tagged[:len(tagged)-1],
		"no tags":       noTags,
		"tagged kind":   {GroupTagged},
		"many tags":     append(append([]byte{GroupTagged}, AppendGroupData(nil, &GroupDataFrame{Seq: 1})[1:]...), 0x10, 0x01),
		"hello version": {GroupHello, 2},
		"many records":  {GroupMembers, 0xff, 0xff},
		"many entries":  {GroupDigest, 0x10, 0x01},
	} {
		f, err := ParseGroupFrame(b)
		var ge *GroupError
		if err == nil || !errors.As(err, &ge) {
			t.Errorf("%s: got %+v, %v; want a *GroupError", name, f, err)
		}
	}
}

// TestGroupVectors checks PROTOCOL.md's group vectors: the encodings and
// the bytes signed are the code's, and the signatures verify.
func TestGroupVectors(t *testing.T) {
	v := specvec.Load(t)
	unhex := func(name string) []byte {
		b, err := hex.DecodeString(v.Get(name))
		if err != nil {
			t.Fatal(name, err)
		}
		return b
	}
	key := unhex("group.key")
	pk, err := x509.ParsePKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub := pk.(*ecdsa.PublicKey)
	id := [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	d := &GroupDataFrame{Origin: id, Epoch: 0x0102030405060708, Seq: 1, Payload: []byte("hi"), Sig: unhex("group.data_sig")}
	v.Check("group.data_signed", hex.EncodeToString(DataSigned("demo", d)))
	v.Check("group.data_frame", hex.EncodeToString(AppendGroupData(nil, d)))
	h := sha256.Sum256(DataSigned("demo", d))
	if !ecdsa.VerifyASN1(pub, h[:], d.Sig) {
		t.Error("group.data_sig does not verify")
	}
	r := &GroupRecord{ID: id, Epoch: 0x0102030405060708, Inc: 1000, Status: StatusAlive, Name: "a", Key: key,
		Addrs: []string{"10.0.0.1:7000"}, By: id, Sig: unhex("group.record_sig")}
	v.Check("group.record_signed", hex.EncodeToString(RecordSigned("demo", r)))
	v.Check("group.members_frame", hex.EncodeToString(AppendGroupMembers(nil, []*GroupRecord{r})))
	h = sha256.Sum256(RecordSigned("demo", r))
	if !ecdsa.VerifyASN1(pub, h[:], r.Sig) {
		t.Error("group.record_sig does not verify")
	}
	v.Check("group.digest_frame", hex.EncodeToString(AppendGroupDigest(nil, []GroupEntry{{Origin: id, Epoch: 0x0102030405060708, Next: 2}})))
	// Authenticators: the pair key of this member and a second one, from
	// either side's ECDH, and the data frame's tag for the second.
	aKey, err := ecdh.P256().NewPrivateKey(unhex2(t, "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"))
	if err != nil {
		t.Fatal(err)
	}
	bKey, err := ecdh.P256().NewPrivateKey(unhex("group.b_scalar"))
	if err != nil {
		t.Fatal(err)
	}
	bPub, err := x509.ParsePKIXPublicKey(unhex("group.b_key"))
	if err != nil {
		t.Fatal(err)
	}
	bECDH, err := bPub.(*ecdsa.PublicKey).ECDH()
	if err != nil || !bECDH.Equal(bKey.PublicKey()) {
		t.Fatalf("group.b_key is not group.b_scalar's public key (%v)", err)
	}
	ab, err := aKey.ECDH(bECDH)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := bKey.ECDH(aKey.PublicKey())
	if err != nil || string(ab) != string(ba) {
		t.Fatalf("the two sides' ECDH differ (%v)", err)
	}
	v.Check("group.ecdh", hex.EncodeToString(ab))
	idB := [16]byte{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00}
	k := GroupPairKey("demo", id, idB, ab)
	if GroupPairKey("demo", idB, id, ba) != k {
		t.Error("the pair key depends on which member derives it")
	}
	v.Check("group.pair_key", hex.EncodeToString(k[:]))
	digest := sha256.Sum256(DataSigned("demo", d))
	tag := GroupTagOf(&k, &digest)
	v.Check("group.data_tag", hex.EncodeToString(tag[:]))
	td := *d
	td.Tags = []GroupTag{{To: [8]byte(idB[:8]), Tag: tag}}
	v.Check("group.tagged_frame", hex.EncodeToString(AppendGroupData(nil, &td)))
	if f, err := ParseGroupFrame(unhex("group.tagged_frame")); err != nil || !reflect.DeepEqual(f.Data, &td) {
		t.Errorf("parsing the tagged frame vector: %+v, %v", f, err)
	}
	if f, err := ParseGroupFrame(unhex("group.members_frame")); err != nil || !reflect.DeepEqual(f.Records[0], r) {
		t.Errorf("parsing the members vector: %+v, %v", f, err)
	}
}

// FuzzGroupFrame feeds arbitrary bytes to the group frame decoder: it
// must return a frame or a *GroupError, never panic, and what it returns
// must encode back to the same bytes.
func FuzzGroupFrame(f *testing.F) {
	r := sampleRecord()
	es := []GroupEntry{{Origin: r.ID, Epoch: 1, Next: 2}}
	f.Add(AppendGroupHello(nil, r, es))
	f.Add(AppendGroupData(nil, &GroupDataFrame{Origin: r.ID, Seq: 1, Dests: [][16]byte{{1}}, Payload: []byte("x"), Sig: []byte{1}}))
	f.Add(AppendGroupMembers(nil, []*GroupRecord{r}))
	f.Add(AppendGroupData(nil, &GroupDataFrame{Origin: r.ID, Seq: 1, Payload: []byte("x"), Sig: []byte{1},
		Tags: []GroupTag{{To: [8]byte{1}, Tag: [TagLen]byte{2}}}}))
	f.Add(AppendGroupDigest(nil, es))
	f.Add(AppendGroupPull(nil, es))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseGroupFrame(b)
		if err != nil {
			var ge *GroupError
			if !errors.As(err, &ge) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		var again []byte
		switch fr.Kind {
		case GroupHello:
			again = AppendGroupHello(nil, fr.Record, fr.Entries)
		case GroupData:
			again = AppendGroupData(nil, fr.Data)
		case GroupMembers:
			again = AppendGroupMembers(nil, fr.Records)
		case GroupDigest:
			again = AppendGroupDigest(nil, fr.Entries)
		case GroupPull:
			again = AppendGroupPull(nil, fr.Entries)
		default:
			return
		}
		if string(again) != string(b) {
			t.Fatalf("%x decodes and encodes to %x", b, again)
		}
	})
}
