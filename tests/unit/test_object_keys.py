from shared import object_keys


def test_a_versions_weights_lie_in_their_models_folder_outside_tritons_repository() -> None:
    key = object_keys.model_weights("detector-0f3a", 2)
    assert key == "_weights/detector-0f3a/2.pt"
    assert key.startswith(object_keys.model_weights_folder("detector-0f3a"))
    # Triton's models are named like `detector-0f3a`: none starts with `_`, so it never loads these files.
    assert not key.startswith("detector-0f3a/")
