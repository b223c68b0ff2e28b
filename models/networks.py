"""The torch modules behind the neural estimators; each maps a batch to one output per row."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class FeedForward(nn.Module):
    """Fully connected layers with ReLU and dropout, ending in a single unit."""

    def __init__(self, n_features: int, hidden_sizes: Sequence[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, int(size)), nn.ReLU(), nn.Dropout(dropout)]
            width = int(size)
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class RecurrentHead(nn.Module):
    """A GRU over (batch, window, n_base) sequences; the last step's state feeds a linear head."""

    def __init__(self, n_base: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        # torch applies GRU dropout only between stacked layers and warns when there is just one.
        self.gru = nn.GRU(n_base, hidden_size, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.gru(x)
        return self.head(self.dropout(hidden[-1]))
