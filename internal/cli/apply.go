package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/decorator"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// A manifest is a YAML stream of documents, each a resource's fields plus
// "kind". Secrets may carry "value" (base64) or "stringValue"; export never
// writes either.
type manifest struct {
	Kind resource.Kind
	Obj  resource.Object
	Doc  int // 1-based position in the stream, for error messages
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// parseManifests decodes and validates every document, and reports every
// bad one, not just the first.
func parseManifests(raw []byte) ([]manifest, error) {
	var out []manifest
	var errs []error
	for i, doc := range docSep.Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		m, err := parseManifest(i, doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errNoDocs
	}
	return out, nil
}

func parseManifest(i int, doc string) (manifest, error) {
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return manifest{}, fmt.Errorf("document %d: %w", i+1, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		return manifest{}, fmt.Errorf("document %d: want a mapping: %w", i+1, err)
	}
	var kindName string
	if err := json.Unmarshal(fields["kind"], &kindName); err != nil || kindName == "" {
		return manifest{}, fmt.Errorf("document %d: missing kind (service, decorator, repository or secret)", i+1)
	}
	k, err := resource.ParseKind(kindName)
	if err != nil {
		return manifest{}, fmt.Errorf("document %d: %w", i+1, err)
	}
	delete(fields, "kind")
	o, err := decodeResource(k, fields)
	if err != nil {
		return manifest{}, fmt.Errorf("document %d: %w", i+1, err)
	}
	return manifest{Kind: k, Obj: o, Doc: i + 1}, nil
}

// decodeResource builds a resource of kind k from its fields (no "kind"),
// refusing unknown fields, and checks it as far as the CLI can: Validate,
// and a decorator's schema compiles. A secret takes "value" (base64) or
// "stringValue" (the value as text). apply and edit both decode with it.
func decodeResource(k resource.Kind, fields map[string]json.RawMessage) (resource.Object, error) {
	o, err := resource.New(k)
	if err != nil {
		return nil, err
	}
	var strVal *string
	if sv, ok := fields["stringValue"]; ok && k == resource.KindSecret {
		var s string
		if err := json.Unmarshal(sv, &s); err != nil {
			return nil, fmt.Errorf("stringValue: %w", err)
		}
		strVal = &s
		delete(fields, "stringValue")
	}
	rest, _ := json.Marshal(fields) // re-encoding decoded JSON cannot fail
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		if k == resource.KindSecret && fields["value"] != nil {
			return nil, fmt.Errorf("(%s): %w (value is base64; give the value as text in stringValue)", k, err)
		}
		return nil, fmt.Errorf("(%s): %w", k, err)
	}
	if strVal != nil {
		o.(*resource.Secret).Value = []byte(*strVal)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if d, ok := o.(*resource.Decorator); ok {
		if _, err := decorator.Compile(d.Schema); err != nil {
			return nil, fmt.Errorf("decorator %s: %w", d.Name, err)
		}
	}
	return o, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (a *App) applyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the resources in a YAML file (idempotent)",
		Long: `Create or update every resource in FILE ('-' for stdin), a YAML stream of documents
each with a 'kind'. Resources are applied in dependency order (secrets, repositories,
decorators, services). A resource that already says the same is left alone, so
applying the same file twice changes nothing. Secrets need 'value' (base64) or
'stringValue' to be created; without one an existing secret keeps its value.
Every document is checked first (fields, names, decorator schemas, a value for each
new secret, every reference in the file or on the server) and every bad one is
reported; if any is bad, nothing is changed (exit 6).`,
		Example: "  autogate apply -f resources.yaml\n  autogate --context manager apply -f resources.yaml --cluster eu-1,us-1",
		Args:    exactArgs(0, "no arguments (use -f)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr{fmt.Errorf("-f is required")}
			}
			var raw []byte
			var err error
			if file == "-" {
				raw, err = io.ReadAll(io.LimitReader(a.In, 16<<20))
			} else {
				raw, err = os.ReadFile(file)
			}
			if err != nil {
				return usageErr{err}
			}
			docs, err := parseManifests(raw)
			if errors.Is(err, resource.ErrInvalid) {
				return err // exit 6, like create with the same bad resource
			} else if err != nil {
				return usageErr{err}
			}
			if ids := a.clusters(); len(ids) > 1 {
				return a.applyClusters(cmd.Context(), ids, raw)
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			return applyDocs(cmd.Context(), cl, docs, a.Out, "")
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "YAML file of resources, or - for stdin")
	return cmd
}

// applyDocs creates or updates docs through cl, in dependency order,
// writing one line per resource (after prefix) to w. It first checks every
// document against the server (a new secret has a value, every reference
// exists or is in docs) and changes nothing unless all pass.
func applyDocs(ctx context.Context, cl *client.Client, docs []manifest, w io.Writer, prefix string) error {
	current, err := preflight(ctx, cl, docs)
	if err != nil {
		return err
	}
	for _, kind := range resource.Kinds {
		for i, d := range docs {
			if d.Kind != kind {
				continue
			}
			name := d.Obj.GetMeta().Name
			cur := current[i]
			switch {
			case cur == nil:
				if err := cl.Create(ctx, d.Obj); err != nil {
					return fmt.Errorf("%s/%s: %w", kind, name, err)
				}
				warn(w, d.Obj)
				fmt.Fprintf(w, "%s%s/%s created\n", prefix, kind, name)
			default:
				d.Obj.GetMeta().Version = cur.GetMeta().Version
				if err := cl.Update(ctx, d.Obj); err != nil {
					return fmt.Errorf("%s/%s: %w", kind, name, err)
				}
				warn(w, d.Obj)
				if d.Obj.GetMeta().Version == cur.GetMeta().Version {
					fmt.Fprintf(w, "%s%s/%s unchanged\n", prefix, kind, name)
				} else {
					fmt.Fprintf(w, "%s%s/%s configured\n", prefix, kind, name)
				}
			}
		}
	}
	return nil
}

// preflight reads the current state of every document (nil: absent) and
// reports every document that cannot be applied, before anything changes.
func preflight(ctx context.Context, cl *client.Client, docs []manifest) ([]resource.Object, error) {
	current := make([]resource.Object, len(docs))
	exists := map[resource.Ref]bool{}
	for i, d := range docs {
		ref := resource.Ref{Kind: d.Kind, Name: d.Obj.GetMeta().Name}
		cur, err := cl.Get(ctx, ref.Kind, ref.Name)
		switch {
		case client.StatusOf(err) == http.StatusNotFound:
		case err != nil:
			return nil, fmt.Errorf("%s/%s: %w", ref.Kind, ref.Name, err)
		default:
			current[i] = cur
			exists[ref] = true
		}
	}
	inDocs := map[resource.Ref]bool{}
	for _, d := range docs {
		inDocs[resource.Ref{Kind: d.Kind, Name: d.Obj.GetMeta().Name}] = true
	}
	var errs []error
	for i, d := range docs {
		name := d.Obj.GetMeta().Name
		if s, ok := d.Obj.(*resource.Secret); ok && current[i] == nil && s.Value == nil {
			errs = append(errs, fmt.Errorf("%w document %d (secret/%s): no value to create it with (add value or stringValue)", resource.ErrInvalid, d.Doc, name))
		}
		for _, ref := range resource.Refs(d.Obj) {
			if inDocs[ref] || exists[ref] {
				continue
			}
			_, err := cl.Get(ctx, ref.Kind, ref.Name)
			switch {
			case client.StatusOf(err) == http.StatusNotFound:
				errs = append(errs, fmt.Errorf("%w document %d (%s/%s): %s %s does not exist and is not in the file", resource.ErrInvalid, d.Doc, d.Kind, name, ref.Kind, ref.Name))
			case err != nil:
				return nil, fmt.Errorf("%s/%s: %w", ref.Kind, ref.Name, err)
			default:
				exists[ref] = true
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("nothing applied: %w", errors.Join(errs...))
	}
	return current, nil
}

// applyClusters applies the manifests in raw to each cluster through the
// Gateway Manager and reports per cluster: a cluster the manager does not
// know fails without a request, one failing cluster stops neither the
// others nor the report, and the command fails if any did.
func (a *App) applyClusters(ctx context.Context, ids []string, raw []byte) error {
	a.cluster = ""
	base, _, err := a.client()
	if err != nil {
		return err
	}
	known, err := base.Clusters(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if !slices.ContainsFunc(known, func(c wire.Cluster) bool { return c.ID == id }) {
			err := &client.Error{Status: http.StatusNotFound, Problem: wire.Problem{Detail: fmt.Sprintf("cluster %q is not registered with the manager", id)}}
			fmt.Fprintf(a.Out, "%s: failed: %v\n", id, err)
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		docs, err := parseManifests(raw) // afresh: applying fills in versions
		if err != nil {
			return usageErr{err}
		}
		if err := applyDocs(ctx, base.Cluster(id), docs, a.Out, id+": "); err != nil {
			fmt.Fprintf(a.Out, "%s: failed: %v\n", id, err)
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		fmt.Fprintf(a.Out, "%s: applied\n", id)
	}
	if len(errs) > 0 {
		return fmt.Errorf("apply failed on %d of %d clusters: %w", len(errs), len(ids), errors.Join(errs...))
	}
	return nil
}

func (a *App) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Print every resource as YAML that `autogate apply -f` accepts (secret values excluded)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			first := true
			for _, kind := range resource.Kinds {
				raws, err := cl.List(cmd.Context(), kind)
				if err != nil {
					return err
				}
				for _, raw := range raws {
					var fields map[string]any
					if err := json.Unmarshal(raw, &fields); err != nil {
						return err
					}
					for _, k := range []string{"version", "createdAt", "updatedAt", "value"} {
						delete(fields, k)
					}
					fields["kind"] = string(kind)
					out, err := yaml.Marshal(fields)
					if err != nil {
						return err
					}
					if !first {
						fmt.Fprintln(a.Out, "---")
					}
					first = false
					a.Out.Write(out)
				}
			}
			return nil
		},
	}
}
