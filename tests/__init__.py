import pytest

# The asserts of the shared helpers explain themselves in a failure, as a test module's do.
pytest.register_assert_rewrite("tests.helpers")
