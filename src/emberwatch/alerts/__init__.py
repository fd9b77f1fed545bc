"""The alert policy: small stages over incidents, in the order :mod:`.policy` lists them.

Pure decisions (:mod:`.decisions`, :mod:`.routing`) say whether to act and why; the
stages in :mod:`.policy` read the database, ask them, and queue what is to be told in the
outbox, in their own transactions. Nothing here sends or imports a channel.
"""
