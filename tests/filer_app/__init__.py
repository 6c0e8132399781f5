"""A content model with a FilerImageField, for the django-filer tests."""
