"""The reference inference server behind ``tippingpoint serve`` (KServe v2 over HTTP)."""
