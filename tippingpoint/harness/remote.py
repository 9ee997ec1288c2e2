"""The report's model section for a model behind an endpoint.

The runner builds the section from the local model reference as for any run, then lays what
the endpoint states of the model over it (:func:`with_remote`): a model that exists only on the
endpoint is named by the endpoint, with no local file to hash; a local file served under another
name is named by the served model (the file that gave the specs stays in ``path``).
"""

from __future__ import annotations

from pathlib import Path

from tippingpoint.core.schema import ModelIdentity, ModelSource, RemoteModel

REMOTE_VARIANT = "remote"
"""The variant of a model known only by its name on an endpoint."""


def with_remote(model: ModelIdentity, remote: RemoteModel) -> ModelIdentity:
    """``model`` with ``remote`` recorded, and named by the endpoint where the local reference
    is not the served model."""
    update: dict[str, object] = {"remote": remote}
    if not remote.local_file:
        update |= {
            "name": remote.name,
            "variant": REMOTE_VARIANT,
            "source": ModelSource.REMOTE,
            "format": "",
            "path": "",
            "sha256": "",
            "size_bytes": 0,
            "sha256_verified": False,
        }
    elif remote.name not in (model.name, Path(model.path).stem):
        update |= {"name": remote.name, "variant": REMOTE_VARIANT}
    return model.model_copy(update=update)
