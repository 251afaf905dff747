// Integration tests drive real servers and real guests; jest's 5 s default is for unit tests.
jest.setTimeout(180_000);
