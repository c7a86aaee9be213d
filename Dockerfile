# Build: the same `dotnet publish` that .ci/run executes and probes.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
# Restore is its own layer: it depends only on the project files, so editing code reuses the cached packages.
COPY src/ApiServer/ApiServer.csproj src/ApiServer/ServerRuntime.props src/ApiServer/
COPY src/ApiServer.Agent/ApiServer.Agent.csproj src/ApiServer.Agent/
RUN dotnet restore src/ApiServer/ApiServer.csproj
COPY src/ src/
RUN dotnet publish src/ApiServer/ApiServer.csproj -c Release --no-restore -o /app/publish

# Run: ASP.NET runtime only, non-root, data on a volume.
FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app/publish .
# 0.0.0.0 is a network bind, so the server refuses to start without a strong API_SERVER_KEY:
#   key=$(openssl rand -hex 32); echo "API key: $key"
#   docker run -e API_SERVER_KEY=$key -p 8642:8642 -v apiserver-data:/data apiserver
ENV API_SERVER_HOST=0.0.0.0 \
    API_SERVER_PORT=8642 \
    API_SERVER_DATA_DIR=/data
RUN mkdir -p /data && chown app:app /data
VOLUME /data
USER app
EXPOSE 8642
# The runtime image has no curl; the app probes itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["dotnet", "ApiServer.dll", "--health-check"]
ENTRYPOINT ["dotnet", "ApiServer.dll"]
