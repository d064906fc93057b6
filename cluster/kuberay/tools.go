//go:build tools

// Package tools pins the KubeRay operator this wrapper module builds: the main package at the root
// of github.com/ray-project/kuberay/ray-operator. Its CRDs are read from the same module
// (config/crd/bases in the module cache), so the operator and its CRDs always match.
package tools

import (
	_ "github.com/ray-project/kuberay/ray-operator"
)
