//go:build tools

// Package tools pins the etcd server this wrapper module builds: the real etcd main package of
// go.etcd.io/etcd/server/v3 (a wrapper of etcdmain.Main), so `go mod tidy` keeps what it needs.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
