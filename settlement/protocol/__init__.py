"""Messages of the national designated-institution interface (国家医保定点医药机构接口).

``envelope`` decodes the request envelope and builds the response envelope,
``inputs`` mirrors each transaction's ``input`` node as msgspec Structs, ``fields``
turns those raw shapes into checked values with coded errors that name the field path,
``outputs`` mirrors each transaction's ``output`` node and ``encoding`` writes amounts
as exact JSON numbers. Nothing here does I/O or touches the ledger.
"""
