# Sourced by .ci/run (and usable by hand as root: `bash .ci/vulkan.sh`): installs Mesa's software
# Vulkan driver (lavapipe) so the WebGPU tests have an adapter. onnxruntime-node's WebGPU provider
# (Dawn) refuses bookworm's Mesa 22.3 ("shaderUniform*ArrayDynamicIndexing required ... No supported
# adapters"); Mesa 25 from bookworm-backports works. Does nothing when a new enough driver is there.
quire_vulkan_packages=(libvulkan1 vulkan-tools mesa-vulkan-drivers)

quire_mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 24 && command -v vulkaninfo >/dev/null && ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null
}

# The deb822 stanza of the machine's own sources that carries SUITE: prints "URI SIGNED-BY".
quire_debian_source_for() {
  awk -v suite="$1" '
    function flush() { if (has && uri) { print uri, key; found = 1; exit } uri = ""; key = ""; has = 0 }
    /^[[:space:]]*$/ { flush(); next }
    /^URIs:/ { uri = $2 }
    /^Signed-By:/ { key = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
    END { if (!found) flush() }' /etc/apt/sources.list.d/*.sources 2>/dev/null
}

quire_install_vulkan() {
  local codename target=() log
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  log=$(mktemp)
  if [ "$codename" = bookworm ]; then
    local list=/etc/apt/sources.list.d/bookworm-backports.sources
    if [ ! -f "$list" ]; then
      local uri key
      read -r uri key < <(quire_debian_source_for bookworm) || true
      if [ -z "${uri:-}" ]; then
        echo "vulkan: no deb822 stanza for bookworm in /etc/apt/sources.list.d: cannot add bookworm-backports" >&2
        return 1
      fi
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "$uri" "${key:-/usr/share/keyrings/debian-archive-keyring.gpg}" > "$list"
    fi
    target=(-t bookworm-backports)
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${target[@]}" "${quire_vulkan_packages[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "vulkan: $(dpkg-query -W -f='mesa-vulkan-drivers ${Version}' mesa-vulkan-drivers)"
}

quire_mesa_ok || quire_install_vulkan
