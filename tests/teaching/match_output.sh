# Sourced by run_doc.sh and check_quotes.sh.
# match_output EXPECTED ACTUAL: whether ACTUAL matches EXPECTED line by line, where a line "..." in
# EXPECTED stands for any number of lines and "..." inside a line for any text. Trailing blanks and
# trailing empty lines are ignored on both sides.
match_output() {
  awk '
    function strip(s) { sub(/[ \t\r]+$/, "", s); return s }
    function line_matches(e, a,    parts, k, pos, rest, np) {
      if (index(e, "...") == 0) return e == a
      np = split(e, parts, /\.\.\./)
      if (substr(a, 1, length(parts[1])) != parts[1]) return 0
      rest = substr(a, length(parts[1]) + 1)
      for (k = 2; k < np; k++) { pos = index(rest, parts[k]); if (pos == 0) return 0; rest = substr(rest, pos + length(parts[k])) }
      return length(rest) >= length(parts[np]) && substr(rest, length(rest) - length(parts[np]) + 1) == parts[np]
    }
    FNR == NR { E[++ne] = strip($0); next }
    { A[++na] = strip($0) }
    END {
      while (ne > 0 && E[ne] == "") ne--
      while (na > 0 && A[na] == "") na--
      # ok[i, j]: the first i expected lines match the first j actual lines
      ok[0, 0] = 1
      for (j = 1; j <= na; j++) ok[0, j] = 0
      for (i = 1; i <= ne; i++)
        for (j = 0; j <= na; j++) {
          if (E[i] == "...") ok[i, j] = ok[i - 1, j] || (j > 0 && ok[i, j - 1])
          else ok[i, j] = j > 0 && ok[i - 1, j - 1] && line_matches(E[i], A[j])
        }
      exit ok[ne, na] ? 0 : 1
    }
  ' "$1" "$2"
}
