module tel.dev/examples/werf

go 1.19

require tel.dev/tel v0.0.0

replace tel.dev/tel => ../../../bindings/go
