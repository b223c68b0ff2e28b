"""What the product is told: the project's paths, the environment's settings, the use case definitions.

Imports nothing from the other layers and no service library.
"""
