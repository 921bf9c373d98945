# Shared by the benchmark scripts: sets up a work folder and the builds, writes the configs of SecureChat, ngIRCd and InspIRCd into
# $WORK (certificate $CERT/$KEY, loopback only, limits raised so that loopback clients are not
# throttled) and starts and stops them. Source it; it defines functions and writes files only.
#   write_anchor_configs                  ngircd.conf on 26703, inspircd.conf on 26704
#   write_securechat_config NAME PORT LN P [FLUSH_MS]   $WORK/NAME.json, users in $WORK/NAME-users.json
#   make_bench_users CONFIG COUNT         accounts bench0..COUNT-1, password bench-password
#   start_anchor ngircd|inspircd [PRELOAD] sets SERVER_PID and PORT
#   prepare_bench CONFIGURATION NAME      builds chat-server, chat-admin and chat-bench, sets BIN,
#                                         WORK (/tmp/NAME.XXXXXX), PIDS (killed on exit), CA/CERT/KEY
#   wait_port PORT

prepare_bench() {
    BIN="$ROOT/.build/$1"
    WORK="$(mktemp -d "/tmp/$2.XXXXXX")"
    echo "work folder: $WORK" >&2
    PIDS=()
    trap 'for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done' EXIT
    for product in chat-server chat-admin chat-bench; do swift build -c "$1" --product "$product" >/dev/null; done
    ulimit -n "$(ulimit -Hn)" || true
    ulimit -c 0 || true   # InspIRCd dumps core when it is stopped; nothing here needs the dump
    "$BIN/chat-admin" certs init --dir "$WORK/certs" >/dev/null
    CA="$WORK/certs/ca.crt"; CERT="$WORK/certs/server.crt"; KEY="$WORK/certs/server.key"
}

wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

write_securechat_config() {
    local flush=""
    [ -n "${5:-}" ] && flush=", \"flushIntervalMilliseconds\": $5"
    cat > "$WORK/$1.json" <<JSON
{
  "serverName": "localhost",
  "listeners": [ { "host": "127.0.0.1", "port": $2 } ],
  "tls": { "certificateChain": "$CERT", "privateKey": "$KEY" },
  "usersFile": "$WORK/$1-users.json",
  "passwordHashing": { "ln": $3, "r": 8, "p": $4 },
  "limits": { "maxClients": 15000, "maxClientsPerAddress": 15000, "messagesPerSecond": 1000000, "messageBurst": 1000000,
              "sendQueueBytes": 16777216, "loginQueue": 20000, "loginQueuePerNetwork": 20000,
              "registrationTimeoutSeconds": 300, "handshakeTimeoutSeconds": 60$flush },
  "history": { "enabled": ${BENCH_HISTORY:-false} }
}
JSON
}

make_bench_users() {
    python3 -c "import sys; [print(f'bench{i},bench-password') for i in range(int(sys.argv[1]))]" "$2" > "$WORK/users.csv"
    "$BIN/chat-admin" import "$WORK/users.csv" --config "$1" >/dev/null 2>&1
}

write_anchor_configs() {
cat > "$WORK/ngircd.conf" <<CONF
[Global]
    Name = bench.ngircd
    Info = ngIRCd benchmark anchor
    Listen = 127.0.0.1
    Ports = 26667
    MotdPhrase = "benchmark"
    PidFile = $WORK/ngircd.pid
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 32
    MaxPenaltyTime = 0
    MaxListSize = 100000
    PingTimeout = 600
    PongTimeout = 600
[Options]
    DNS = no
    Ident = no
    PAM = no
    RequireAuthPing = no
[SSL]
    CertFile = $CERT
    KeyFile = $KEY
    Ports = 26703
CONF
echo benchmark > "$WORK/motd.txt"
cat > "$WORK/inspircd.conf" <<CONF
<config format="xml">
<server name="bench.inspircd" description="InspIRCd benchmark anchor" network="Bench">
<admin name="bench" nick="bench" email="bench@localhost">
<module name="ssl_gnutls">
<sslprofile name="Clients" provider="gnutls" certfile="$CERT" keyfile="$KEY" hash="sha256" requestclientcert="no" priority="NORMAL">
<bind address="127.0.0.1" port="26704" type="clients" sslprofile="Clients">
<connect name="main" allow="*" maxchans="1000" timeout="300" pingfreq="600" hardsendq="104857600" softsendq="16777216" recvq="65536" threshold="1000000" commandrate="100000000" fakelag="no" localmax="30000" globalmax="30000" useident="no" limit="30000" resolvehostnames="no" modes="">
<performance netbuffersize="10240" somaxconn="4096" softlimit="30000" clonesonconnect="no" quietbursts="yes" nouserdns="yes">
<options defaultmodes="nt" syntaxhints="no">
<security maxtargets="20" runasuser="" runasgroup="">
<channels users="1000" opers="1000">
<dns server="127.0.0.1" timeout="1">
<pid file="$WORK/inspircd.pid">
<files motd="$WORK/motd.txt">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$WORK/inspircd.log">
<whowas groupsize="0" maxgroups="0" maxkeep="0">
CONF
}

start_anchor() {
    case "$1" in
        ngircd)   LD_PRELOAD="${2:-}" ngircd --nodaemon --config "$WORK/ngircd.conf" >"$WORK/ngircd.out" 2>&1 & SERVER_PID=$!; PORT=26703;;
        inspircd) LD_PRELOAD="${2:-}" inspircd --runasroot --nofork --config="$WORK/inspircd.conf" >"$WORK/inspircd.out" 2>&1 & SERVER_PID=$!; PORT=26704;;
    esac
    PIDS+=("$SERVER_PID")
    wait_port "$PORT"
}
