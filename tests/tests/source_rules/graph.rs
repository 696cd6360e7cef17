//! The file-level import graph of one crate, and its circles.
//!
//! The nodes are the crate's source files, found from its root through `mod` declarations. An
//! edge A → B says code in A names an item defined in B: in a `use` tree, in a path in code
//! (`crate::x::y`, `super::z`, `self::…`) or in such a path inside a macro call. Paths are
//! resolved through the modules' own `use` imports and re-exports to the file that defines the
//! item, so `use crate::Thing`, where `lib.rs` re-exports `thing::Thing`, is an edge to
//! `thing.rs`, not to `lib.rs`.
//!
//! A module naming its own submodules' items is ownership, like its `mod` declaration, and no
//! edge: seen from outside, a module and its children are one unit. Every other reference is an
//! edge, a child's `use super::…` included. `#[cfg(test)]` items (modules or not) are left out:
//! test code is not part of the crate's structure.
//!
//! A circle is a strongly connected component of more than one file: every file in it reaches
//! every other through edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// What a crate is made of, as far as its import graph goes.
#[derive(Debug, Default)]
pub struct CrateGraph {
    files: Vec<SourceFile>,
    modules: Vec<Module>,
    references: Vec<Reference>,
}

/// One source file of a crate.
#[derive(Debug)]
pub struct SourceFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its length in lines.
    pub lines: usize,
    /// The module the file is (inline modules in it are its descendants).
    module: usize,
}

#[derive(Debug)]
struct Module {
    file: usize,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    /// Names of the items defined in the module itself.
    items: BTreeSet<String>,
    imports: Vec<Import>,
}

/// A `use` in a module: the name it brings in (`None` for a glob) and the path it names.
#[derive(Debug)]
struct Import {
    name: Option<String>,
    path: Vec<String>,
}

/// A path written in a module's code or `use` trees.
#[derive(Debug)]
struct Reference {
    module: usize,
    path: Vec<String>,
}

/// One edge: code in `from` names an item of `to`; `via` is the first path that did.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The file whose code names the item.
    pub from: PathBuf,
    /// The file that defines it.
    pub to: PathBuf,
    /// The path as written, e.g. `crate::layout::reserved_segment`.
    pub via: String,
}

/// Files that each reach the others through edges, and the edges among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    /// The files, sorted.
    pub files: Vec<PathBuf>,
    /// The edges between files of the circle, sorted.
    pub edges: Vec<Edge>,
}

/// A file that could not be read or parsed.
#[derive(Debug)]
pub struct LoadError {
    path: PathBuf,
    problem: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// Where a path leads.
#[derive(Debug, Clone, Copy)]
enum Found {
    Module(usize),
    /// An item defined in this file.
    Item(usize),
}

/// Why a path did not resolve: it left the crate (another crate, the prelude), or it reached a
/// module of the crate and then a name the loader does not see (made by a macro, say).
#[derive(Debug, Clone, Copy)]
enum Unresolved {
    Outside,
    InModule(usize),
}

/// Re-exports chain; a chain longer than this is a cycle of imports (which rustc refuses).
const MAX_IMPORT_DEPTH: u8 = 32;

impl CrateGraph {
    /// Loads the crate whose root file (`lib.rs`, `main.rs`, a test or bin file) is `root`.
    pub fn load(root: &Path) -> Result<Self, LoadError> {
        let mut graph = Self::default();
        let dir = root.parent().unwrap_or(Path::new(".")).to_owned();
        graph.load_file(root, None, &dir)?;
        Ok(graph)
    }

    /// The crate's files, its root first.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    fn load_file(
        &mut self,
        path: &Path,
        parent: Option<(usize, String)>,
        children_dir: &Path,
    ) -> Result<usize, LoadError> {
        let error = |problem: String| LoadError {
            path: path.to_owned(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let ast = syn::parse_file(&text).map_err(|e| error(e.to_string()))?;
        let file = self.files.len();
        let module = self.new_module(file, parent);
        self.files.push(SourceFile {
            path: path.to_owned(),
            lines: text.lines().count(),
            module,
        });
        self.collect(&ast.items, module, children_dir)?;
        Ok(module)
    }

    fn new_module(&mut self, file: usize, parent: Option<(usize, String)>) -> usize {
        let id = self.modules.len();
        self.modules.push(Module {
            file,
            parent: parent.as_ref().map(|(p, _)| *p),
            children: BTreeMap::new(),
            items: BTreeSet::new(),
            imports: Vec::new(),
        });
        if let Some((p, name)) = parent {
            self.modules[p].children.insert(name, id);
        }
        id
    }

    /// Records the items of `module`; `dir` is where its file submodules live.
    fn collect(&mut self, items: &[syn::Item], module: usize, dir: &Path) -> Result<(), LoadError> {
        for item in items {
            if is_cfg_test(item_attrs(item)) {
                continue;
            }
            match item {
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    match &m.content {
                        Some((_, inner)) => {
                            let file = self.modules[module].file;
                            let child = self.new_module(file, Some((module, name.clone())));
                            self.collect(inner, child, &dir.join(&name))?;
                        }
                        None => {
                            let (path, children_dir) = module_file(dir, &name, &m.attrs);
                            self.load_file(&path, Some((module, name)), &children_dir)?;
                        }
                    }
                }
                syn::Item::Use(u) if u.leading_colon.is_none() => {
                    let mut uses = Vec::new();
                    flatten_use(&u.tree, &mut Vec::new(), &mut uses);
                    for (name, path) in uses {
                        self.references.push(Reference {
                            module,
                            path: path.clone(),
                        });
                        self.modules[module].imports.push(Import { name, path });
                    }
                }
                syn::Item::Use(_) => {}
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules[module].items.insert(name);
                    }
                    let mut paths = PathCollector::default();
                    paths.visit_item(other);
                    self.references.extend(
                        paths
                            .found
                            .into_iter()
                            .map(|path| Reference { module, path }),
                    );
                }
            }
        }
        Ok(())
    }

    /// Every edge between two files, one per ordered pair (the first path that made it).
    pub fn edges(&self) -> Vec<Edge> {
        let mut seen = BTreeMap::new();
        for reference in &self.references {
            let from = self.modules[reference.module].file;
            let to = match self.resolve(reference.module, &reference.path, 0) {
                Ok(Found::Item(file)) => file,
                Ok(Found::Module(m)) | Err(Unresolved::InModule(m)) => self.modules[m].file,
                Err(Unresolved::Outside) => continue,
            };
            if from == to || self.owns(self.files[from].module, self.files[to].module) {
                continue;
            }
            seen.entry((from, to))
                .or_insert_with(|| reference.path.join("::"));
        }
        seen.into_iter()
            .map(|((from, to), via)| Edge {
                from: self.files[from].path.clone(),
                to: self.files[to].path.clone(),
                via,
            })
            .collect()
    }

    /// Whether `descendant` is `ancestor` or one of its submodules.
    fn owns(&self, ancestor: usize, descendant: usize) -> bool {
        let mut at = Some(descendant);
        while let Some(m) = at {
            if m == ancestor {
                return true;
            }
            at = self.modules[m].parent;
        }
        false
    }

    /// Where `path`, written in `module`, leads.
    fn resolve(&self, module: usize, path: &[String], depth: u8) -> Result<Found, Unresolved> {
        if depth > MAX_IMPORT_DEPTH || path.is_empty() {
            return Err(Unresolved::Outside);
        }
        match path[0].as_str() {
            "crate" => self.walk(0, &path[1..], depth),
            "self" => self.walk(module, &path[1..], depth),
            "super" => match self.modules[module].parent {
                Some(parent) => self.walk(parent, &path[1..], depth),
                None => Err(Unresolved::Outside),
            },
            // A path relative to the module: its first name must be one the module knows, or
            // it names another crate.
            _ => match self.walk(module, path, depth) {
                Err(Unresolved::InModule(m)) if m == module => Err(Unresolved::Outside),
                found => found,
            },
        }
    }

    fn walk(&self, module: usize, path: &[String], depth: u8) -> Result<Found, Unresolved> {
        let Some((name, rest)) = path.split_first() else {
            return Ok(Found::Module(module));
        };
        let here = &self.modules[module];
        match name.as_str() {
            "self" => return self.walk(module, rest, depth),
            "super" => {
                return match here.parent {
                    Some(parent) => self.walk(parent, rest, depth),
                    None => Err(Unresolved::Outside),
                }
            }
            _ => {}
        }
        if let Some(&child) = here.children.get(name) {
            return self.walk(child, rest, depth);
        }
        if here.items.contains(name) {
            return Ok(Found::Item(here.file));
        }
        if let Some(import) = here
            .imports
            .iter()
            .find(|i| i.name.as_deref() == Some(name.as_str()))
        {
            return match self.resolve(module, &import.path, depth + 1) {
                Ok(Found::Module(target)) => self.walk(target, rest, depth + 1),
                Ok(Found::Item(file)) => Ok(Found::Item(file)),
                // A name imported from another crate, or one the loader does not see: the
                // `use` itself is the edge.
                Err(unresolved) => Err(unresolved),
            };
        }
        for glob in here.imports.iter().filter(|i| i.name.is_none()) {
            if let Ok(Found::Module(target)) = self.resolve(module, &glob.path, depth + 1) {
                if let Ok(found) = self.walk(target, path, depth + 1) {
                    return Ok(found);
                }
            }
        }
        Err(Unresolved::InModule(module))
    }

    /// Every circle of the crate, sorted by their first file.
    pub fn circles(&self) -> Vec<Circle> {
        let edges = self.edges();
        let index: BTreeMap<&Path, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.as_path(), i))
            .collect();
        let mut next = vec![Vec::new(); self.files.len()];
        for e in &edges {
            next[index[e.from.as_path()]].push(index[e.to.as_path()]);
        }
        let mut circles: Vec<Circle> = strongly_connected(&next)
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| {
                let files: BTreeSet<&Path> = component
                    .iter()
                    .map(|&i| self.files[i].path.as_path())
                    .collect();
                Circle {
                    edges: edges
                        .iter()
                        .filter(|e| {
                            files.contains(e.from.as_path()) && files.contains(e.to.as_path())
                        })
                        .cloned()
                        .collect(),
                    files: files.into_iter().map(Path::to_owned).collect(),
                }
            })
            .collect();
        circles.sort_by(|a, b| a.files.cmp(&b.files));
        circles
    }
}

/// Where the file of `mod name;` declared in a module whose submodules live in `dir` is, and
/// where its own submodules live.
fn module_file(dir: &Path, name: &str, attrs: &[syn::Attribute]) -> (PathBuf, PathBuf) {
    let explicit = attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    });
    if let Some(relative) = explicit {
        let path = dir.join(relative);
        let children = path.parent().unwrap_or(dir).to_owned();
        return (path, children);
    }
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        (flat, dir.join(name))
    } else {
        (dir.join(name).join("mod.rs"), dir.join(name))
    }
}

/// `(name it binds, path)` for each leaf of a `use` tree; the name is `None` for a glob.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Option<String>, Vec<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let leaf = n.ident.to_string();
            if leaf == "self" {
                out.push((prefix.last().cloned(), prefix.clone()));
            } else {
                let mut path = prefix.clone();
                path.push(leaf.clone());
                out.push((Some(leaf), path));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            let name = Some(r.rename.to_string()).filter(|n| n != "_");
            out.push((name, path));
        }
        syn::UseTree::Glob(_) => out.push((None, prefix.clone())),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, out);
            }
        }
    }
}

/// The name an item defines in its module's namespace, if any.
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::ExternCrate(i) => i.rename.as_ref().map_or(&i.ident, |(_, r)| r),
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` exactly: compiled for the crate's own unit tests only.
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// The module-anchored paths (`crate::…`, `super::…`, `self::…`) in an item's code.
#[derive(Default)]
struct PathCollector {
    found: Vec<Vec<String>>,
}

const ANCHORS: [&str; 3] = ["crate", "super", "self"];

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_cfg_test(item_attrs(item)) {
            return;
        }
        if let syn::Item::Use(u) = item {
            // A `use` inside a function body: it names what it names, binding nothing the
            // module's other code sees.
            let mut uses = Vec::new();
            flatten_use(&u.tree, &mut Vec::new(), &mut uses);
            self.found.extend(uses.into_iter().map(|(_, path)| path));
            return;
        }
        visit::visit_item(self, item);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return visit::visit_impl_item(self, item),
        };
        if !is_cfg_test(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let anchored = path.leading_colon.is_none()
            && path.segments.len() > 1
            && ANCHORS.iter().any(|a| path.segments[0].ident == a);
        if anchored {
            self.found
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        anchored_paths_in(mac.tokens.clone(), &mut self.found);
        visit::visit_macro(self, mac);
    }
}

/// Module-anchored paths in a macro's tokens (which syn leaves unparsed), `$crate::…` included.
fn anchored_paths_in(tokens: TokenStream, out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let is_colon =
        |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => anchored_paths_in(g.stream(), out),
            TokenTree::Ident(first) if ANCHORS.iter().any(|a| first == a) => {
                let mut path = vec![first.to_string()];
                let mut j = i + 1;
                while is_colon(tokens.get(j)) && is_colon(tokens.get(j + 1)) {
                    let Some(TokenTree::Ident(next)) = tokens.get(j + 2) else {
                        break;
                    };
                    path.push(next.to_string());
                    j += 3;
                }
                if path.len() > 1 {
                    out.push(path);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Tarjan's strongly connected components of the graph `next` (node → successors).
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct Walk<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        components: Vec<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.counter);
            self.low[v] = self.counter;
            self.counter += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.next[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
    let n = next.len();
    let mut walk = Walk {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    walk.components
}
