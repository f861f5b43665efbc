"""Social insurance services on the engine's persons and ledger: card, employment, pension.

Pure domain code: state machines, tables and arithmetic. Storage and HTTP live in
``adapters.services``.
"""
