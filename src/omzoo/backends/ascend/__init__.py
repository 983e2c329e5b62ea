"""The Ascend backend: aclruntime sessions (acl), the atc compiler (atc), the CANN root and npu-smi (cann),
and the host checks `omzoo doctor` prints (host)."""
