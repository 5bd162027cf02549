FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY . .
# The upload folder is the app user's only (0700): a new named volume mounted there takes this mode and owner.
RUN pip install --no-cache-dir . && useradd --create-home app && mkdir -p /data/uploads && chown app /data/uploads \
    && chmod 0700 /data/uploads
USER app
EXPOSE 8000
