module github.com/lvc-codec/lvc

go 1.26.8

require google.golang.org/protobuf v1.36.12

require golang.org/x/image v0.47.0 // indirect
