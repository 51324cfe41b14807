"""客户分级 core: ERP exports -> graded customers -> filled template. Pure: no printing, no Excel."""

__version__ = "0.1.0"
