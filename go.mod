module github.com/lvc-codec/lvc

go 1.26.8

require (
	golang.org/x/image v0.47.0
	golang.org/x/sys v0.49.0
	google.golang.org/protobuf v1.36.12
)
