// Command render renders a Helm chart's templates the way `helm template` does, for CI
// on machines without Helm (it is in neither Debian's packages nor npm). It uses what
// Helm's engine uses: Go's text/template with Sprig v3's functions (less env and
// expandenv), plus Helm's own include, tpl, required, toYaml, fromYaml, toJson,
// fromJson and an empty lookup. Templates execute with missingkey=error, so reading a
// value that values.yaml does not define is an error rather than an empty string.
//
// It does not merge values or validate them against values.schema.json: the caller
// (test/unit/helm-chart.test.ts) does that and passes the merged values in.
//
// Input on stdin, JSON: {"chartDir": "...", "values": {...}, "release": {"name": "...",
// "namespace": "..."}, "kubeVersion": "v1.30.0"}. Output on stdout, JSON:
// {"manifests": {"steward/templates/x.yaml": "..."}, "notes": "..."}. Errors go to
// stderr with exit status 1.
//
// Build with Debian's golang-go, golang-github-masterminds-sprig-dev and
// golang-gopkg-yaml.v2-dev, in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run deploy/helm/render/main.go < input.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

// Helm stops a runaway recursion of include at this depth.
const recursionMaxNums = 1000

type input struct {
	ChartDir    string                 `json:"chartDir"`
	Values      map[string]interface{} `json:"values"`
	Release     map[string]interface{} `json:"release"`
	KubeVersion string                 `json:"kubeVersion"`
}

type output struct {
	Manifests map[string]string `json:"manifests"`
	Notes     string            `json:"notes"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var req input
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	chart, err := chartMetadata(filepath.Join(req.ChartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	chartName, _ := chart["Name"].(string)
	sources, err := templateSources(req.ChartDir, chartName)
	if err != nil {
		return err
	}
	release := map[string]interface{}{
		"Name": "steward", "Namespace": "default", "IsInstall": true, "IsUpgrade": false,
		"Revision": 1, "Service": "Helm",
	}
	for key, value := range req.Release {
		release[strings.ToUpper(key[:1])+key[1:]] = value
	}
	kubeVersion := req.KubeVersion
	if kubeVersion == "" {
		kubeVersion = "v1.30.0"
	}
	major, minor := "1", "30"
	if parts := strings.Split(strings.TrimPrefix(kubeVersion, "v"), "."); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	top := map[string]interface{}{
		"Values":  req.Values,
		"Release": release,
		"Chart":   chart,
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{
				"Version": kubeVersion, "GitVersion": kubeVersion, "Major": major, "Minor": minor,
			},
		},
		"Files": map[string]interface{}{},
	}

	t, err := parseAll(sources)
	if err != nil {
		return err
	}
	result := output{Manifests: map[string]string{}}
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasPrefix(filepath.Base(name), "_") {
			continue
		}
		data := map[string]interface{}{}
		for key, value := range top {
			data[key] = value
		}
		data["Template"] = map[string]interface{}{
			"Name": name, "BasePath": chartName + "/templates",
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return fmt.Errorf("rendering %s: %w", name, err)
		}
		rendered := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.HasSuffix(name, "NOTES.txt") {
			result.Notes = rendered
		} else {
			result.Manifests[name] = rendered
		}
	}
	return json.NewEncoder(out).Encode(result)
}

// parseAll parses every template file into one set, as Helm does, so any file's
// `define` is visible to every other.
func parseAll(sources map[string]string) (*template.Template, error) {
	t := template.New("gotpl").Option("missingkey=error")
	t.Funcs(funcMap(t, sources))
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := t.New(name).Parse(sources[name]); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
	}
	return t, nil
}

func funcMap(t *template.Template, sources map[string]string) template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm leaves these out: a chart must not read the environment of whoever renders it.
	delete(f, "env")
	delete(f, "expandenv")
	depth := map[string]int{}
	f["include"] = func(name string, data interface{}) (string, error) {
		depth[name]++
		defer func() { depth[name]-- }()
		if depth[name] > recursionMaxNums {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		// A fresh set: a text/template cannot be cloned once it has executed.
		fresh, err := parseAll(sources)
		if err != nil {
			return "", err
		}
		inline, err := fresh.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf strings.Builder
		if err := inline.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil {
			return nil, errors.New(message)
		}
		if text, ok := value.(string); ok && text == "" {
			return nil, errors.New(message)
		}
		return value, nil
	}
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["toJson"] = func(value interface{}) string {
		data, err := json.Marshal(value)
		if err != nil {
			return ""
		}
		return string(data)
	}
	f["fromJson"] = func(text string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

// toYAML is Helm's: JSON first (so field names and numbers come out as Kubernetes
// expects), then YAML, without the trailing newline.
func toYAML(value interface{}) string {
	data, err := json.Marshal(value)
	if err != nil {
		return ""
	}
	var generic interface{}
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return ""
	}
	out, err := yaml.Marshal(generic)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(out), "\n")
}

// fromYAML is Helm's: a map whose numbers are float64 (YAML → JSON → Go), or a map
// holding only "Error" when the text does not parse.
func fromYAML(text string) map[string]interface{} {
	m := map[string]interface{}{}
	var generic interface{}
	if err := yaml.Unmarshal([]byte(text), &generic); err != nil {
		m["Error"] = err.Error()
		return m
	}
	data, err := json.Marshal(stringKeys(generic))
	if err != nil {
		m["Error"] = err.Error()
		return m
	}
	if err := json.Unmarshal(data, &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// stringKeys turns yaml.v2's map[interface{}]interface{} into maps JSON can encode.
func stringKeys(value interface{}) interface{} {
	switch v := value.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(v))
		for key, item := range v {
			m[fmt.Sprint(key)] = stringKeys(item)
		}
		return m
	case []interface{}:
		for i, item := range v {
			v[i] = stringKeys(item)
		}
		return v
	default:
		return v
	}
}

// chartMetadata reads Chart.yaml into the field names templates use (.Chart.Name,
// .Chart.AppVersion, ...).
func chartMetadata(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	chart := map[string]interface{}{}
	for key, value := range raw {
		field := strings.ToUpper(key[:1]) + key[1:]
		if key == "apiVersion" {
			field = "APIVersion"
		}
		chart[field] = stringKeys(value)
	}
	if name, _ := chart["Name"].(string); name == "" {
		return nil, fmt.Errorf("%s: no name", path)
	}
	return chart, nil
}

// templateSources reads templates/ recursively, named as Helm names them
// ("<chart>/templates/<file>").
func templateSources(chartDir, chartName string) (map[string]string, error) {
	root := filepath.Join(chartDir, "templates")
	sources := map[string]string{}
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sources[chartName+"/templates/"+filepath.ToSlash(rel)] = string(data)
		return nil
	})
	return sources, err
}
