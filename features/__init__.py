"""Pure feature engineering: pandas, numpy and scikit-learn only."""
