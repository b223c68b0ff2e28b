import pandas as pd

from pipelines.nodes.merge import merge_batch


def frame(rows):
    return pd.DataFrame(rows, columns=["key", "value"])


def test_new_rows_are_appended_in_order():
    result = merge_batch(frame([["a", 1]]), frame([["b", 2], ["c", 3]]))
    assert list(result.merged["key"]) == ["a", "b", "c"]
    assert len(result.new_rows) == 2 and result.duplicates_dropped == 0


def test_exact_duplicates_are_dropped_even_across_dtypes():
    current = frame([["a", 1]])
    batch = pd.DataFrame({"key": ["a", "b"], "value": [1, 2]}).astype({"value": object})
    result = merge_batch(current, batch)
    assert list(result.new_rows["key"]) == ["b"]
    assert result.duplicates_dropped == 1


def test_conflicting_rows_are_kept_for_the_key_check_to_reject():
    result = merge_batch(frame([["a", 1]]), frame([["a", 9]]))
    assert list(result.merged["value"]) == [1, 9]


def test_batch_columns_follow_the_dataset_order():
    batch = pd.DataFrame({"value": [2], "key": ["b"]})
    result = merge_batch(frame([["a", 1]]), batch)
    assert list(result.merged.columns) == ["key", "value"]


def test_first_batch_of_a_new_dataset():
    result = merge_batch(None, frame([["a", 1], ["a", 1]]))
    assert len(result.merged) == 1 and result.duplicates_dropped == 1
