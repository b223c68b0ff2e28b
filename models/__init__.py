"""The model zoo: every family follows the scikit-learn estimator API."""
