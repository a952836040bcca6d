//! The token trie: every non-special token's bytes, as a trie laid out in
//! depth-first preorder.
//!
//! ```text
//!  node: 0(root) 1:'a' 2:'b' 3:'c' 4:'b'      tokens: "a"->1, "ab"->2, "ac"->3, "b"->4
//!  depth:  0       1     2     2     1
//!  end:    5       4     3     4     5        (index one past the node's subtree)
//! ```
//!
//! A walk visits nodes in array order; rejecting a node skips to its `end`,
//! which prunes the whole subtree. The depth of a node says which stack entry
//! holds its parent's state. Tokens with identical bytes share a node.

use crate::vocab::TokenId;

/// The trie over a vocabulary's non-special tokens.
#[derive(Debug)]
pub(crate) struct TokenTrie {
    bytes: Vec<u8>,
    depth: Vec<u16>,
    end: Vec<u32>,
    tok_start: Vec<u32>,
    toks: Vec<TokenId>,
    first: Vec<u8>,
    max_depth: usize,
}

impl TokenTrie {
    /// The trie of `tokens` except those marked `special`.
    pub(crate) fn new(tokens: &[Vec<u8>], special: &[bool]) -> TokenTrie {
        let mut ids: Vec<TokenId> = (0..tokens.len() as TokenId).filter(|&t| !special[t as usize]).collect();
        ids.sort_unstable_by(|&a, &b| tokens[a as usize].cmp(&tokens[b as usize]));
        let mut t = TokenTrie {
            bytes: vec![0],
            depth: vec![0],
            end: vec![0],
            tok_start: vec![0],
            toks: Vec::new(),
            first: vec![0],
            max_depth: 0,
        };
        // path[d] = node index at depth d on the current path
        let mut path: Vec<u32> = vec![0];
        let mut prev: &[u8] = &[];
        for &id in &ids {
            let cur: &[u8] = &tokens[id as usize];
            let common = prev.iter().zip(cur).take_while(|(a, b)| a == b).count();
            // close nodes deeper than `common`
            while path.len() > common + 1 {
                let n = path.pop().expect("path is non-empty");
                t.end[n as usize] = t.bytes.len() as u32;
            }
            for (i, &b) in cur.iter().enumerate().skip(common) {
                t.bytes.push(b);
                t.depth.push((i + 1) as u16);
                t.end.push(0);
                t.tok_start.push(t.toks.len() as u32);
                t.first.push(cur[0]);
                path.push((t.bytes.len() - 1) as u32);
            }
            t.max_depth = t.max_depth.max(cur.len());
            t.toks.push(id);
            prev = cur;
        }
        while let Some(n) = path.pop() {
            t.end[n as usize] = t.bytes.len() as u32;
        }
        t.tok_start.push(t.toks.len() as u32);
        t
    }

    /// Number of nodes (including the root).
    pub(crate) fn num_nodes(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn max_depth(&self) -> usize {
        self.max_depth
    }

    #[inline]
    pub(crate) fn byte(&self, n: usize) -> u8 {
        self.bytes[n]
    }

    #[inline]
    pub(crate) fn depth(&self, n: usize) -> usize {
        self.depth[n] as usize
    }

    /// One past the last node of `n`'s subtree.
    #[inline]
    pub(crate) fn end(&self, n: usize) -> usize {
        self.end[n] as usize
    }

    /// All tokens in the subtree of `n` (including `n`'s own).
    #[inline]
    pub(crate) fn subtree_tokens(&self, n: usize) -> &[TokenId] {
        &self.toks[self.tok_start[n] as usize..self.tok_start[self.end(n)] as usize]
    }

    /// Number of tokens in the subtree of `n` (including `n`'s own).
    #[inline]
    pub(crate) fn subtree_len(&self, n: usize) -> usize {
        (self.tok_start[self.end(n)] - self.tok_start[n]) as usize
    }

    /// The first byte of the path to `n` (0 for the root).
    #[inline]
    pub(crate) fn first_byte(&self, n: usize) -> u8 {
        self.first[n]
    }

    /// The tokens whose bytes end at node `n`.
    #[inline]
    pub(crate) fn tokens(&self, n: usize) -> &[TokenId] {
        &self.toks[self.tok_start[n] as usize..self.tok_start[n + 1] as usize]
    }

    /// The node reached by `bytes` from the root, if any.
    pub(crate) fn find(&self, bytes: &[u8]) -> Option<usize> {
        let mut n = 0;
        for &b in bytes {
            n = self.child(n, b)?;
        }
        Some(n)
    }

    /// The child of `n` on byte `b`.
    pub(crate) fn child(&self, n: usize, b: u8) -> Option<usize> {
        let mut c = n + 1;
        let end = self.end(n);
        while c < end {
            if self.bytes[c] == b {
                return Some(c);
            }
            c = self.end(c);
        }
        None
    }

    /// Whether `n` has children.
    pub(crate) fn has_children(&self, n: usize) -> bool {
        self.end(n) > n + 1
    }
}

#[cfg(test)]
mod tests {
    use crate::Vocabulary;

    #[test]
    fn preorder_layout() {
        let v = Vocabulary::new(
            vec![b"<s>".to_vec(), b"a".to_vec(), b"ab".to_vec(), b"ac".to_vec(), b"b".to_vec(), b"ab".to_vec()],
            &[0],
            &[],
        )
        .unwrap();
        let t = v.trie();
        assert_eq!(t.num_nodes(), 5);
        let a = t.find(b"a").unwrap();
        assert_eq!(t.tokens(a), &[1]);
        let ab = t.find(b"ab").unwrap();
        let mut toks = t.tokens(ab).to_vec();
        toks.sort();
        assert_eq!(toks, vec![2, 5]);
        assert_eq!(t.end(a), a + 3);
        assert!(t.find(b"<s>").is_none());
        assert_eq!(t.end(0), 5);
    }
}
