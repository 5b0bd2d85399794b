# One image for the gateway and every emulator; docker-compose picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY schema ./schema
COPY resolvers ./resolvers
COPY deploy ./deploy
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["crm-gateway", "serve", "--config", "/app/deploy/compose.toml", "--host", "0.0.0.0", "--port", "8000"]
