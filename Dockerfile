# sipsvc container: build a wheel, then install it into a slim runtime as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sipsvc ./sipsvc
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --home /var/lib/sipsvc --create-home sipsvc
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER sipsvc
ENV SIPSVC_HTTP=0.0.0.0:8000 SIPSVC_SIP=0.0.0.0:5060 SIPSVC_DATA_DIR=/var/lib/sipsvc
VOLUME /var/lib/sipsvc
EXPOSE 8000/tcp 5060/udp 5060/tcp
CMD ["sipsvc", "serve"]
