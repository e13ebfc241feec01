#!/usr/bin/env bash
# Commit the reader notebooks tree (_build/notebooks, written by the build) as the whole content of
# a branch, and push it: the branch the launch buttons open in Binder and Colab.
#
#   bash scripts/publish_notebooks.sh [remote] [branch]    (defaults: origin notebooks)
#
# The commit is made with a scratch index, so the checkout, its index and its branch are left as
# they are; it has no parent (the branch is replaced, not extended: it holds built files only).
# .github/workflows/publish.yml runs this after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
remote="${1:-origin}"
branch="${2:-notebooks}"
tree_dir="_build/notebooks"
if [ ! -d "$tree_dir/book" ]; then
  echo "no $tree_dir/book: build the book first (bash scripts/build.sh)" >&2
  exit 1
fi
source_commit="$(git rev-parse HEAD)"
index="$(mktemp)"
trap 'rm -f "$index"' EXIT
rm -f "$index"
export GIT_INDEX_FILE="$index"
git --work-tree="$tree_dir" add --all --force -- .
tree="$(git write-tree)"
commit="$(
  GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-github-actions[bot]}" \
  GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
  GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-github-actions[bot]}" \
  GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
  git commit-tree "$tree" -m "Reader notebooks built from $source_commit"
)"
git push --force "$remote" "$commit:refs/heads/$branch"
echo "pushed $commit (reader notebooks of $source_commit) to $remote $branch"
