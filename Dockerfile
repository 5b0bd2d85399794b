# One image for the gateway and every emulator; docker-compose picks the command.
FROM python:3.11-slim
WORKDIR /app
# The locked releases first (a layer that changes only with the lock), then the project
# itself, built by the locked setuptools and without resolving anything again.
COPY requirements ./requirements
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY schema ./schema
COPY resolvers ./resolvers
COPY emulators ./emulators
COPY deploy ./deploy
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && pip check
USER nobody
EXPOSE 8000
CMD ["crm-gateway", "serve", "--config", "/app/deploy/compose.toml", "--host", "0.0.0.0", "--port", "8000"]
