// Command render prints Kueue's own CRDs and webhook configurations (read from the sigs.k8s.io/kueue
// module's config/components, the files `kustomize build config/default` starts from) rewritten for
// a control plane on loopback, where there is no Service or pod network:
//
//   - every webhook and CRD conversion webhook calls Kueue by URL (https://127.0.0.1:PORT/<path>)
//     instead of through the webhook Service, with the caBundle of a CA the caller made;
//   - the CRDs that config/components/crd/kustomization.yaml patches with a conversion webhook
//     (patches/webhook_in_*.yaml) get it, the rest keep strategy None, as in Kueue's release;
//   - the namespaceSelector patches of config/components/webhook/kustomization.yaml are applied
//     (kube-system and the Kueue namespace are exempt from the pod/deployment/statefulset webhooks),
//     config/default's namePrefix "kueue-" is applied to the configurations' names;
//   - like Kueue's Helm chart, the pod, deployment and statefulset webhooks get failurePolicy Ignore
//     unless that integration is enabled (they watch every Pod, Deployment and StatefulSet).
//
//	Usage: render -kueue-dir DIR -url https://127.0.0.1:9443 -ca-file ca.crt -frameworks batch/job,ray.io/rayjob \
//		[-crds-out crds.yaml -webhooks-out webhooks.yaml]   (default: everything to stdout)
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

type object = map[string]any

func main() {
	kueueDir := flag.String("kueue-dir", "", "the sigs.k8s.io/kueue module directory (go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)")
	url := flag.String("url", "", "base URL of Kueue's webhook server, e.g. https://127.0.0.1:9443")
	caFile := flag.String("ca-file", "", "PEM CA certificate that signed the webhook server's certificate")
	frameworks := flag.String("frameworks", "", "comma-separated integrations.frameworks Kueue runs with")
	namespace := flag.String("namespace", "kueue-system", "the namespace Kueue is configured with")
	crdsOut := flag.String("crds-out", "", "write the CRDs to this file instead of stdout")
	webhooksOut := flag.String("webhooks-out", "", "write the webhook configurations to this file instead of stdout")
	flag.Parse()
	if *kueueDir == "" || *url == "" || *caFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	ca, err := os.ReadFile(*caFile)
	check(err)
	r := renderer{
		dir:        filepath.Join(*kueueDir, "config", "components"),
		url:        strings.TrimRight(*url, "/"),
		caBundle:   base64.StdEncoding.EncodeToString(ca),
		frameworks: map[string]bool{},
		namespace:  *namespace,
	}
	for _, f := range strings.Split(*frameworks, ",") {
		if f = strings.TrimSpace(f); f != "" {
			r.frameworks[f] = true
		}
	}
	crds, webhooks := r.crds(), r.webhookConfigurations()
	if *crdsOut == "" && *webhooksOut == "" {
		write("", append(crds, webhooks...))
		return
	}
	write(*crdsOut, crds)
	write(*webhooksOut, webhooks)
}

// write writes docs as a YAML stream to path ("" is stdout).
func write(path string, docs []object) {
	var out bytes.Buffer
	for _, doc := range docs {
		b, err := yaml.Marshal(doc)
		check(err)
		out.WriteString("---\n")
		out.Write(b)
	}
	if path == "" {
		_, err := os.Stdout.Write(out.Bytes())
		check(err)
		return
	}
	check(os.WriteFile(path, out.Bytes(), 0o644))
}

type renderer struct {
	dir        string
	url        string
	caBundle   string
	frameworks map[string]bool
	namespace  string
}

func (r renderer) clientConfig(path string) object {
	return object{"url": r.url + path, "caBundle": r.caBundle}
}

// crds returns config/components/crd/bases/*.yaml, with the conversion webhooks that
// config/components/crd/kustomization.yaml enables.
func (r renderer) crds() []object {
	kustomization := readDocs(filepath.Join(r.dir, "crd", "kustomization.yaml"))[0]
	conversion := map[string]bool{} // CRD names patched with a conversion webhook
	for _, p := range list(kustomization["patches"]) {
		path, _ := p.(object)["path"].(string)
		if !strings.HasPrefix(filepath.Base(path), "webhook_in_") {
			continue
		}
		patch := readDocs(filepath.Join(r.dir, "crd", path))[0]
		conversion[str(patch, "metadata", "name")] = true
	}
	var crds []object
	for _, res := range list(kustomization["resources"]) {
		crd := readDocs(filepath.Join(r.dir, "crd", res.(string)))[0]
		name := str(crd, "metadata", "name")
		if conversion[name] {
			crd["spec"].(object)["conversion"] = object{
				"strategy": "Webhook",
				"webhook": object{
					"clientConfig":             r.clientConfig("/convert"),
					"conversionReviewVersions": []any{"v1"},
				},
			}
			delete(conversion, name)
		}
		crds = append(crds, crd)
	}
	if len(conversion) > 0 {
		fail("conversion patches for CRDs not in the kustomization's resources: %v", keys(conversion))
	}
	return crds
}

var frameworkOfWebhook = map[string]string{ // the webhooks Kueue's Helm chart makes optional
	"pod.kb.io":         "pod",
	"deployment.kb.io":  "deployment",
	"statefulset.kb.io": "statefulset",
}

func (r renderer) webhookConfigurations() []object {
	configs := readDocs(filepath.Join(r.dir, "webhook", "manifests.yaml"))
	kustomization := readDocs(filepath.Join(r.dir, "webhook", "kustomization.yaml"))[0]
	// Inline strategic-merge patches keyed by configuration kind and webhook name.
	patches := map[string]map[string]object{}
	for _, p := range list(kustomization["patches"]) {
		text, _ := p.(object)["patch"].(string)
		if text == "" {
			continue
		}
		var patch object
		check(yaml.Unmarshal([]byte(text), &patch))
		kind := str(patch, "kind")
		if patches[kind] == nil {
			patches[kind] = map[string]object{}
		}
		for _, w := range list(patch["webhooks"]) {
			patches[kind][str(w.(object), "name")] = w.(object)
		}
	}
	var out []object
	for _, cfg := range configs {
		kind := str(cfg, "kind")
		if kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration" {
			continue
		}
		cfg["metadata"].(object)["name"] = "kueue-" + str(cfg, "metadata", "name")
		for _, w := range list(cfg["webhooks"]) {
			wh := w.(object)
			name := str(wh, "name")
			for k, v := range patches[kind][name] {
				if k != "name" {
					wh[k] = replaceNamespace(v, r.namespace)
				}
			}
			path := str(wh, "clientConfig", "service", "path")
			if path == "" {
				fail("webhook %s has no clientConfig.service.path", name)
			}
			wh["clientConfig"] = r.clientConfig(path)
			if fw, ok := frameworkOfWebhook[name[1:]]; ok && !r.frameworks[fw] {
				wh["failurePolicy"] = "Ignore"
			}
		}
		out = append(out, cfg)
	}
	if len(out) != 2 {
		fail("expected a mutating and a validating webhook configuration, found %d", len(out))
	}
	return out
}

// replaceNamespace swaps the literal namespace kueue-system of Kueue's patches for the configured one.
func replaceNamespace(v any, namespace string) any {
	switch t := v.(type) {
	case string:
		if t == "kueue-system" {
			return namespace
		}
		return t
	case []any:
		for i := range t {
			t[i] = replaceNamespace(t[i], namespace)
		}
		return t
	case object:
		for k := range t {
			t[k] = replaceNamespace(t[k], namespace)
		}
		return t
	}
	return v
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func readDocs(path string) []object {
	data, err := os.ReadFile(path)
	check(err)
	var docs []object
	for _, part := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		var doc object
		check(yaml.Unmarshal([]byte(part), &doc))
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		fail("%s holds no YAML document", path)
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(o object, path ...string) string {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(object)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", args...)
	os.Exit(1)
}
