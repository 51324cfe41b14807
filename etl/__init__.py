"""Headless ETL command (grade-etl) over the grading core."""
