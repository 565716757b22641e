"""The platform demo: the translator with traffic, the sentinel watching it,
and a fault that breaks things a minute in, so an alert fires."""
