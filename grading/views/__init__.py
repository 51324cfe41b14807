"""The views of the workbook beyond the main table (issue 14): 总览, 业务员与地区, 应收与信用,
growth, profit and grid summaries. Each builds plan blocks from the graded frame; the
blocks are optional (a template without them is filled without them)."""
