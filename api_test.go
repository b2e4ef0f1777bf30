package nearnet

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nearnet/nearnet/internal/dgram"
	"github.com/nearnet/nearnet/internal/nnerr"
	"github.com/nearnet/nearnet/internal/resource"
	"github.com/nearnet/nearnet/internal/wire"
)

// TestNoInternalTypeInAPI: no exported type of a public package of the
// module (the root included) is an alias of, or defined as, a type of an
// internal package, and none appears in an exported field or in the
// signature of an exported function or method. go doc would show it
// without fields or documentation, and callers could not name it.
// (Exported variables may hold internal sentinel errors: they are of type
// error.)
func TestNoInternalTypeInAPI(t *testing.T) {
	pkgs := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch name := d.Name(); {
			case path != "." && (name == "internal" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if filepath.Dir(path) == "." {
			pkgs++
		}
		checkNoInternalTypes(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pkgs == 0 {
		t.Fatal("no file of the root package checked")
	}
}

func checkNoInternalTypes(t *testing.T, path string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	internal := map[string]string{} // import name -> path, for internal packages
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if !strings.Contains(p, "/internal/") && !strings.HasSuffix(p, "/internal") {
			continue
		}
		name := p[strings.LastIndexByte(p, '/')+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		internal[name] = p
	}
	report := func(what string, expr ast.Expr) {
		ast.Inspect(expr, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && internal[id.Name] != "" {
					t.Errorf("%s: %s uses %s.%s of %s: define the type in a public package (see errors.go)", path, what, id.Name, sel.Sel.Name, internal[id.Name])
				}
			}
			return true
		})
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() && (d.Recv == nil || exportedRecv(d.Recv.List[0].Type)) {
				report("func "+d.Name.Name, d.Type)
			}
		case *ast.GenDecl:
			if d.Tok != token.TYPE {
				continue
			}
			for _, spec := range d.Specs {
				ts := spec.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				what := "type " + ts.Name.Name
				st, isStruct := ts.Type.(*ast.StructType)
				switch {
				case ts.Assign.IsValid() || !isStruct:
					// An alias, or a defined type: all of it is API.
					report(what, ts.Type)
				default:
					for _, fd := range st.Fields.List {
						if len(fd.Names) == 0 && ast.IsExported(embeddedName(fd.Type)) {
							report(what+" (embedded field)", fd.Type)
						}
						for _, n := range fd.Names {
							if n.IsExported() {
								report(what+"."+n.Name, fd.Type)
							}
						}
					}
				}
			}
		}
	}
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(e ast.Expr) bool {
	return ast.IsExported(embeddedName(e))
}

// embeddedName is the type name in T, *T, T[P] or pkg.T.
func embeddedName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return embeddedName(x.X)
	case *ast.IndexExpr:
		return embeddedName(x.X)
	case *ast.IndexListExpr:
		return embeddedName(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// TestInternalErrorsShowAsPublic: every internal error type that reaches
// a caller is found by errors.As as its public type, with the same
// fields, however deep it is wrapped; errors.Is matches the same
// sentinels on both; and the internal type is still found as itself.
func TestInternalErrorsShowAsPublic(t *testing.T) {
	cause := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	cases := []struct {
		internal error
		public   any // a pointer to a nil pointer of the public type
		is       []error
	}{
		{&nnerr.ConfigError{Field: "AcceptOptions.MaxPartials", Value: -1, Reason: "r"}, new(*ConfigError), nil},
		{&wire.ProtocolError{What: "bad frame"}, new(*ProtocolError), nil},
		{&dgram.TooLargeError{Size: 2000, Max: 1200}, new(*DatagramTooLargeError), []error{ErrDatagramTooLarge}},
		{&resource.NameError{Name: "../x", Reason: "r"}, new(*ResourceNameError), nil},
		{&resource.RejectedError{Code: "exists", Reason: "r"}, new(*ResourceRejectedError), []error{ErrResourceExists}},
		{&resource.ReceiverError{Code: "hash_mismatch", Message: "m"}, new(*ResourceReceiverError), []error{ErrResourceCorrupted}},
		{&resource.ReceiverError{Code: "idle_timeout", Message: "m"}, new(*ResourceReceiverError), []error{ErrResourceIdle}},
		{&resource.DroppedError{Code: "disk_full", Reason: "r", Partial: "p", Kept: 7, Err: cause}, new(*ResourceDroppedError), []error{ErrResourceDiskFull, syscall.ENOSPC}},
		{&resource.DroppedError{Code: "idle_timeout", Reason: "r"}, new(*ResourceDroppedError), []error{ErrResourceIdle}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%T", c.internal)
		if publicError(c.internal) == nil {
			t.Errorf("%s: publicError has no public type for it", name)
			continue
		}
		for _, err := range []error{c.internal, fmt.Errorf("outer: %w", c.internal), errors.Join(errors.New("other"), fmt.Errorf("a: %w", c.internal))} {
			if !errors.As(err, c.public) {
				t.Errorf("%s: errors.As(%v) to %T is false", name, err, c.public)
				continue
			}
			pub := reflect.ValueOf(c.public).Elem().Interface().(error)
			if got, want := reflect.ValueOf(pub).Elem().Interface(), reflect.ValueOf(c.internal).Elem().Interface(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: public fields %+v, want %+v", name, got, want)
			}
			if pub.Error() != c.internal.Error() {
				t.Errorf("%s: public text %q, internal %q", name, pub.Error(), c.internal.Error())
			}
			for _, s := range c.is {
				if !errors.Is(err, s) || !errors.Is(pub, s) {
					t.Errorf("%s: errors.Is(%v, %v) = %v, on the public type %v", name, err, s, errors.Is(err, s), errors.Is(pub, s))
				}
			}
			self := reflect.New(reflect.TypeOf(c.internal))
			if !errors.As(err, self.Interface()) || self.Elem().Interface() != c.internal {
				t.Errorf("%s: errors.As to the internal type lost it", name)
			}
			if exported(c.internal) == c.internal {
				t.Errorf("%s: exported returned the internal error", name)
			}
		}
	}
	var dropped *ResourceDroppedError
	if !errors.As(fmt.Errorf("x: %w", &resource.DroppedError{Code: "idle_timeout"}), &dropped) || !dropped.Timeout() {
		t.Error("a dropped idle transfer is not a timeout")
	}
	if err := errors.New("plain"); exported(err) != err || publicError(err) != nil {
		t.Error("exported changed an error that has no public type")
	}
}
