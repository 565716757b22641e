"""Operations: scheduled maintenance, backup and restore, reports."""
