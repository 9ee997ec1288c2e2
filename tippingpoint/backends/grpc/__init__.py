"""The remote gRPC endpoint backend: KServe v2 / Open Inference Protocol over gRPC (Triton's and
KServe's gRPC port) as a network session (the load scenarios live in
:mod:`tippingpoint.harness.network`)."""
