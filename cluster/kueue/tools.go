//go:build tools

// Package tools pins the Kueue manager this wrapper module builds (sigs.k8s.io/kueue/cmd/kueue).
// Its CRDs and webhook configurations are read from the same module (config/components in the
// module cache) by ./render, so the manager and its manifests always match.
package tools

import (
	_ "sigs.k8s.io/kueue/cmd/kueue"
)
