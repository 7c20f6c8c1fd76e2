#!/usr/bin/env bash
# Build the FerretDB binary of the local stack from its Go module, once.
#
# Usage: build-ferretdb.sh VERSION CACHE_DIR [BUILD]
#   VERSION    FerretDB module version, e.g. v1.24.2
#   CACHE_DIR  folder of the stack cache
#   BUILD      name of this build, VERSION by default; the binary lands in
#              CACHE_DIR/ferretdb-BUILD/ferretdb, so a new patch gets a new name
#
# Why a script: FerretDB's own build (Taskfile + `go generate`) needs a git
# checkout to write build/version/*.txt, which are embedded in the binary and
# without which it panics at start. The module zip from the Go proxy has no
# git data, so this writes those files itself, then runs a plain `go build`.
# Every step is skipped when its output already exists.
#
# Six patches are applied to the source, see patch_id_lookup, patch_lazy_debug_logs,
# patch_id_pushdown, patch_update_closes_each, patch_writes_one_transaction and
# patch_no_resource_tracking below.
set -euo pipefail

version="${1:?usage: build-ferretdb.sh VERSION CACHE_DIR}"
cache="${2:?usage: build-ferretdb.sh VERSION CACHE_DIR}"
build="${3:-$version}"
module="github.com/FerretDB/FerretDB"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"  # absolute: the build below changes folder

out="$cache/ferretdb-$build/ferretdb"
src="$cache/ferretdb-$build/src"
export GOMODCACHE="$cache/gomod"
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local

if [[ -x "$out" ]]; then
  echo "ferretdb: $out exists, skipping build"
  exit 0
fi

mkdir -p "$cache/ferretdb-$build"
cd "$cache/ferretdb-$build"  # outside any go.mod, so `go mod download` takes a bare module
echo "ferretdb: downloading $module@$version"
info="$(go mod download -json "$module@$version")"
moddir="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$moddir" || ! -d "$moddir" ]]; then
  echo "ferretdb: go mod download gave no module folder:" >&2
  printf '%s\n' "$info" >&2
  exit 1
fi

# The module cache is read-only by design; build in a private copy.
rm -rf "$src"
cp -r "$moddir" "$src"
chmod -R u+w "$src"

# What `go generate ./build/version` would write from git.
gen="$src/build/version"
printf '%s\n' "$version" >"$gen/version.txt"
printf '%s\n' "unknown" >"$gen/commit.txt"
printf '%s\n' "unknown" >"$gen/branch.txt"
printf '%s\n' "coc-local" >"$gen/package.txt"

# The SQLite backend looks documents up by `_ferretdb_sjson->'$._id'` but builds
# the unique _id index on `_ferretdb_sjson->"_id"`. SQLite uses an expression
# index only for the same expression, so every lookup, update and delete by _id
# scanned the whole table (74 ms at 2,000 documents instead of 0.06 ms). The
# patch makes the lookups use the index's own expression; both give the same
# value, and existing data and indexes stay as they are.
patch_id_lookup() {
  local file="$src/internal/backends/sqlite/metadata/metadata.go"
  local old="IDColumn = DefaultColumn + \"->'\$._id'\""
  local new='IDColumn = DefaultColumn + `->"_id"`'
  if ! grep -qF "$old" "$file"; then
    echo "ferretdb: $file no longer has the expected _id expression; review the patch" >&2
    exit 1
  fi
  python3 - "$file" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    text = f.read()
with open(path, "w", encoding="utf-8") as f:
    f.write(text.replace(old, new, 1))
PY
  echo "ferretdb: patched the _id lookup expression to match its index"
}
patch_id_lookup

# Every SQL statement FerretDB runs is passed to `logger.With(args...)` for a
# debug line, before the logger is asked whether debug is on. slog's text
# handler formats those attributes at once: each document written is quoted
# and escaped character by character even at --log-level=warn. A CPU profile
# of the pipeline at 50 builds/s showed 17% of FerretDB's CPU there (the signed
# certificates are the large documents). The patch asks the logger first; with
# debug logging on, the lines are the same.
patch_lazy_debug_logs() {
  python3 - "$src/internal/util/fsql/db.go" "$src/internal/util/fsql/tx.go" <<'PY'
import re, sys
line = re.compile(r"^(\t)(\w+)\.l\.With\(fields\.\.\.\)\.DebugContext\((.*)\)$", re.M)
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    patched, n = line.subn(r"\1if \2.l.Enabled(ctx, slog.LevelDebug) {\n\1\t\2.l.With(fields...).DebugContext(\3)\n\1}", text)
    if n == 0:
        sys.exit(f"ferretdb: {path} no longer logs statements as expected; review the patch")
    with open(path, "w", encoding="utf-8") as f:
        f.write(patched)
    print(f"ferretdb: {path.rsplit('/', 1)[-1]}: {n} debug lines formatted only when debug is on")
PY
}
patch_lazy_debug_logs

# The SQLite backend pushes an `_id` equality down to SQL only when it is the
# filter's one key: `{"_id": v, "seq": 3}` read and decoded the whole
# collection, and so did `{"_id": {"$in": [...]}}`. Every handler filters the
# documents it gets back by the whole filter again, so narrowing the SQL to
# the `_id` conjunct gives the same answer. With the patch a guarded write
# (`replace_one({"_id": v, "seq": n}, ...)`) is one indexed request, and a read
# of up to 1,000 documents by `_id` `$in` one indexed `IN (...)` query.
patch_id_pushdown() {
  python3 - "$src/internal/backends/sqlite/collection.go" <<'PY'
import sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    text = f.read()
old = "\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get(\"_id\")"
new = "\tif params.Filter.Len() >= 1 {\n\t\tv, _ := params.Filter.Get(\"_id\")"
if text.count(old) != 2:
    sys.exit(f"ferretdb: {path} no longer pushes _id down as expected; review the patch")
text = text.replace(old, new)
# In Query (the first of the two), an $in of strings or ObjectIDs becomes IN (...).
old_case = (
    "\t\t\twhereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)\n"
    "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n"
    "\t\t}\n"
)
new_case = old_case + (
    "\t\tif in, ok := idIn(v); ok {\n"
    "\t\t\tmarks := strings.TrimSuffix(strings.Repeat(\"?, \", len(in)), \", \")\n"
    "\t\t\twhereClause = fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, marks)\n"
    "\t\t\targs = in\n"
    "\t\t}\n"
)
if text.count(old_case) != 2:  # Query's, then Explain's (left as it is)
    sys.exit(f"ferretdb: {path}: Query's _id clause is not as expected; review the patch")
text = text.replace(old_case, new_case, 1)
text += """
// idIn returns the SQL arguments of an _id filter {"$in": [...]} of 1 to 1,000 strings or
// ObjectIDs, and false for any other value (patched in by the coc-local build).
func idIn(v any) ([]any, bool) {
	d, ok := v.(*types.Document)
	if !ok || d.Len() != 1 {
		return nil, false
	}
	a, _ := d.Get("$in")
	values, ok := a.(*types.Array)
	if !ok || values.Len() == 0 || values.Len() > 1000 {
		return nil, false
	}
	args := make([]any, 0, values.Len())
	for i := 0; i < values.Len(); i++ {
		e := must.NotFail(values.Get(i))
		switch e.(type) {
		case string, types.ObjectID:
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(e))))
		default:
			return nil, false
		}
	}
	return args, true
}
"""
with open(path, "w", encoding="utf-8") as f:
    f.write(text)
print("ferretdb: collection.go: _id equality and $in pushed down beside other filter keys")
PY
}
patch_id_pushdown

# An update command of many statements (a `bulk_write` of replaces or updates)
# kept each statement's query open until the whole command ended (a `defer`
# inside the loop). Each open query holds one of the backend's 100 SQLite
# connections, so the 100th statement waited for a connection forever and the
# server answered nothing more (../shared/ferretdb-measured.md: "never
# answers"). The patch closes each statement's query when the statement is done.
patch_update_closes_each() {
  python3 - "$src/internal/handler/msg_update.go" <<'PY'
import sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    text = f.read()
added = "\t\tcloser.Add(res.Iter)\n"
old = "\t\tcloser := iterator.NewMultiCloser()\n\t\tdefer closer.Close()\n"
new = "\t\tcloser := iterator.NewMultiCloser()\n"
call = "\t\tresult, err := common.UpdateDocument(ctx, c, \"update\", iter, &u)\n"
if text.count(old) != 1 or text.count(call) != 1 or text.count(added) != 1:
    sys.exit(f"ferretdb: {path} no longer runs updates as expected; review the patch")
text = text.replace(old, new).replace(call, call + "\t\tcloser.Close()\n")
with open(path, "w", encoding="utf-8") as f:
    f.write(text)
print("ferretdb: msg_update.go: each update statement's query closed when it is done")
PY
}
patch_update_closes_each

# Each statement of an update or delete command (a `bulk_write` of replaces or
# deletes) was written in a SQLite transaction of its own: a profile of FerretDB
# under the pipeline put 24% of its CPU in the commits (the WAL frames, an fsync
# each) and 9% in the checkpoints they set off. The patch collects the documents
# the statements change (or the ids they delete) and writes them together, one
# transaction, when the command ends. A statement reads what the earlier ones
# wrote: one whose filter is not a plain string or ObjectID `_id`, or names an
# `_id` already collected, first writes what was collected. Upserts insert at
# once, as before. A failing command answers an error, as before; its collected
# writes are then not made (before, the statements ahead of the failing one were).
patch_writes_one_transaction() {
  cat >"$src/internal/handler/coc_collected_writes.go" <<'GO'
package handler

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
)

// collectedWrites are the documents an update command's statements changed, or the ids a
// delete command's statements delete, written together in one transaction when the
// command ends (patched in by the coc-local build).
type collectedWrites struct {
	c       backends.Collection
	updates []*types.Document
	deletes []any
	ids     map[string]struct{}
	unsafe  bool // a collected _id is not a string or ObjectID: it is not told apart
}

// collectingCollection is a statement's collection whose UpdateAll and DeleteAll are collected.
type collectingCollection struct {
	backends.Collection
	into *collectedWrites
}

func (cc *collectingCollection) UpdateAll(_ context.Context, params *backends.UpdateAllParams) (*backends.UpdateAllResult, error) {
	cc.into.c = cc.Collection
	for _, doc := range params.Docs {
		cc.into.updates = append(cc.into.updates, doc)
		id, _ := doc.Get("_id")
		cc.into.remember(id)
	}
	return &backends.UpdateAllResult{Updated: int32(len(params.Docs))}, nil
}

func (cc *collectingCollection) DeleteAll(ctx context.Context, params *backends.DeleteAllParams) (*backends.DeleteAllResult, error) {
	if len(params.RecordIDs) > 0 { // not collected: by record id, not _id
		return cc.Collection.DeleteAll(ctx, params)
	}
	cc.into.c = cc.Collection
	for _, id := range params.IDs {
		cc.into.deletes = append(cc.into.deletes, id)
		cc.into.remember(id)
	}
	return &backends.DeleteAllResult{Deleted: int32(len(params.IDs))}, nil
}

func (w *collectedWrites) remember(id any) {
	k, ok := collectedKey(id)
	if !ok {
		w.unsafe = true
		return
	}
	if w.ids == nil {
		w.ids = make(map[string]struct{})
	}
	w.ids[k] = struct{}{}
}

// readsNothingCollected is true when a statement with this filter cannot read a collected document.
func (w *collectedWrites) readsNothingCollected(filter *types.Document) bool {
	if len(w.updates) == 0 && len(w.deletes) == 0 {
		return true
	}
	if w.unsafe || filter == nil {
		return false
	}
	id, err := filter.Get("_id")
	if err != nil {
		return false
	}
	k, ok := collectedKey(id)
	if !ok {
		return false
	}
	_, seen := w.ids[k]
	return !seen
}

// write makes the collected writes, updates in one transaction, deletes in one, and forgets them.
func (w *collectedWrites) write(ctx context.Context) error {
	updates, deletes := w.updates, w.deletes
	w.updates, w.deletes, w.ids, w.unsafe = nil, nil, nil, false
	if len(updates) > 0 {
		if _, err := w.c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: updates}); err != nil {
			return err
		}
	}
	if len(deletes) > 0 {
		if _, err := w.c.DeleteAll(ctx, &backends.DeleteAllParams{IDs: deletes}); err != nil {
			return err
		}
	}
	return nil
}

func collectedKey(id any) (string, bool) {
	switch id := id.(type) {
	case string:
		return "s" + id, true
	case types.ObjectID:
		return "o" + string(id[:]), true
	default:
		return "", false
	}
}
GO
  python3 - "$src/internal/handler/msg_update.go" "$src/internal/handler/msg_delete.go" <<'PY'
import sys
update_path, delete_path = sys.argv[1:]
def patch(path, edits):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new in edits:
        if text.count(old) != 1:
            sys.exit(f"ferretdb: {path} no longer runs its statements as expected ({old.strip()!r}); review the patch")
        text = text.replace(old, new)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
patch(update_path, [
    ("\tfor _, u := range params.Updates {\n",
     "\tcollected := new(collectedWrites)\n\n\tfor _, u := range params.Updates {\n"),
    ("\t\tvar qp backends.QueryParams\n",
     "\t\tif !collected.readsNothingCollected(u.Filter) {\n"
     "\t\t\tif err = collected.write(ctx); err != nil {\n"
     "\t\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n"
     "\t\t\t}\n"
     "\t\t}\n\n"
     "\t\tvar qp backends.QueryParams\n"),
    ("\t\tresult, err := common.UpdateDocument(ctx, c, \"update\", iter, &u)\n",
     "\t\tresult, err := common.UpdateDocument(ctx, &collectingCollection{Collection: c, into: collected}, \"update\", iter, &u)\n"),
    ("\treturn matched, modified, &upserted, nil\n",
     "\tif err = collected.write(ctx); err != nil {\n"
     "\t\treturn 0, 0, nil, lazyerrors.Error(err)\n"
     "\t}\n\n"
     "\treturn matched, modified, &upserted, nil\n"),
])
patch(delete_path, [
    ("\tfor i, p := range params.Deletes {\n",
     "\tcollected := new(collectedWrites)\n\n\tfor i, p := range params.Deletes {\n"),
    ("\t\td, err = h.execDelete(connCtx, c, &p)\n",
     "\t\tif !collected.readsNothingCollected(p.Filter) {\n"
     "\t\t\tif err = collected.write(connCtx); err != nil {\n"
     "\t\t\t\treturn nil, lazyerrors.Error(err)\n"
     "\t\t\t}\n"
     "\t\t}\n\n"
     "\t\td, err = h.execDelete(connCtx, &collectingCollection{Collection: c, into: collected}, &p)\n"),
    ("\tres := must.NotFail(types.NewDocument(\n\t\t\"n\", deleted,\n",
     "\tif err = collected.write(connCtx); err != nil {\n"
     "\t\treturn nil, lazyerrors.Error(err)\n"
     "\t}\n\n"
     "\tres := must.NotFail(types.NewDocument(\n\t\t\"n\", deleted,\n"),
])
print("ferretdb: msg_update.go, msg_delete.go: a command's writes made in one transaction")
PY
}
patch_writes_one_transaction

# Every query iterator (each read, and each statement of an update or delete)
# was registered with FerretDB's resource tracker: a pprof profile entry with
# the caller's stack (runtime.callers), and a finalizer that panics, stopping
# the server, if the iterator is collected without being closed. A leak check
# for FerretDB's own tests, left on in its releases: a profile of FerretDB
# under the pipeline put 12.7% of its CPU there (Track 10.7%, Untrack 2.0%),
# the stack capture most of it. The patch makes Track and Untrack return at
# once; the iterators are closed as before.
patch_no_resource_tracking() {
  python3 - "$src/internal/util/resource/resource.go" <<'PY'
import sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    text = f.read()
edits = [
    ("func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n",
     "func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n\n\tif !tracking {\n\t\treturn\n\t}\n"),
    ("func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n",
     "func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n\n\tif !tracking {\n\t\treturn\n\t}\n"),
]
for old, new in edits:
    if text.count(old) != 1:
        sys.exit(f"ferretdb: {path} no longer tracks resources as expected; review the patch")
    text = text.replace(old, new)
text += "\n// tracking is off in the coc-local build: no stack captured, no finalizer set per iterator.\nconst tracking = false\n"
with open(path, "w", encoding="utf-8") as f:
    f.write(text)
print("ferretdb: resource.go: query iterators no longer tracked")
PY
}
patch_no_resource_tracking

echo "ferretdb: building $out (takes a few minutes the first time)"
(cd "$src" && go build -trimpath -o "$out.tmp" ./cmd/ferretdb)
mv "$out.tmp" "$out"
rm -rf "$src"
echo "ferretdb: built $out"
