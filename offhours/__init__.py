"""offhours."""
