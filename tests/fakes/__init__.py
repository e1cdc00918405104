"""Small but faithful fakes of the systems the connector talks to, served over real HTTP on 127.0.0.1."""
