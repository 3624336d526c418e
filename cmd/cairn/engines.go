package main

// The engines linked into cairn: each registers itself (its module, verbs
// and journal engines) from init. A new engine is one line here.
import (
	_ "github.com/cairnhq/cairn/engines/capture"
	_ "github.com/cairnhq/cairn/engines/infra" // Terraform-style plan and apply over HCL, with drift detection
	_ "github.com/cairnhq/cairn/engines/kv"
	_ "github.com/cairnhq/cairn/engines/kv/etcdapi" // the etcd v3 API of the KV engine (--etcd)
)
