"""A page model with an image field, for the Wagtail tests' page editor."""
