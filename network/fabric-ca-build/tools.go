//go:build tools

// Package cabuild pins the Fabric CA commands vpp-fabric builds; see fabric-samples.lock.
package cabuild

import (
	_ "github.com/hyperledger/fabric-ca/cmd/fabric-ca-client"
	_ "github.com/hyperledger/fabric-ca/cmd/fabric-ca-server"
)
