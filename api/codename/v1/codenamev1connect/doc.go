// Package codenamev1connect is the CodenameCreator service for connect-go,
// generated from codename.proto by protoc-gen-connect-go: the handler
// through which the gateway answers gRPC-Web and Connect calls, and a
// client that speaks Connect, gRPC-Web or gRPC.
package codenamev1connect
