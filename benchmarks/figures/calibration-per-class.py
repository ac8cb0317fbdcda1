"""Probe: single temperature vs vector scaling vs per-class temperature on
ResNet18 pooled features (MlNetTransfer shards) + multinomial logistic head.
Run by calibration.sh with "per-class" (sklearn stands in for the ML.NET head: its regularisation differs).
Usage: OMP_NUM_THREADS=1 /usr/bin/python3 calibration-per-class.py <folder holding fashion.shard, hym.shard, cal.shard>
"""
import os, struct, sys
os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.model_selection import StratifiedKFold

# ---- shard parser (FeatureShard format 2, src/MlNetTransfer/Featurization/FeatureShard.cs) ----
def rstr(b, o):
    n = 0; s = 0
    while True:
        c = b[o]; o += 1; n |= (c & 0x7f) << s; s += 7
        if c < 0x80: break
    return b[o:o+n].decode(), o+n
def load(p):
    b = open(p, 'rb').read(); o = 8
    ver, = struct.unpack_from('<i', b, o); o += 4
    ck, o = rstr(b, o); cb, o = rstr(b, o); t, o = rstr(b, o)
    nd, = struct.unpack_from('<i', b, o); o += 4
    shape = struct.unpack_from('<%di' % nd, b, o); o += 4*nd
    idx, cnt, nr = struct.unpack_from('<iii', b, o); o += 12
    L = int(np.prod(shape)); recs = []
    for _ in range(nr):
        h, o = rstr(b, o); rp, o = rstr(b, o); lab, o = rstr(b, o)
        nv, = struct.unpack_from('<i', b, o); o += 4
        views = {}
        for _ in range(nv):
            k, o = rstr(b, o); views[k] = np.frombuffer(b, dtype='<f4', count=L, offset=o).copy(); o += 4*L
        recs.append((rp, lab, views))
    return recs
def split(recs):
    out = {}
    for rp, lab, v in recs:
        s = rp.split('/')[0]; x = list(v.values())[0]
        out.setdefault(s, ([], []))[0].append(x); out[s][1].append(lab)
    return {k: (np.array(a), np.array(b)) for k, (a, b) in out.items()}

# ---- metrics ----
def softmax(z):
    z = z - z.max(1, keepdims=True); e = np.exp(z); return e / e.sum(1, keepdims=True)
def nll(p, y):
    return -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1)))
def ece(p, y, nb=15):
    conf = p.max(1); corr = (p.argmax(1) == y).astype(float)
    bins = np.minimum(np.ceil(conf * nb).astype(int) - 1, nb - 1).clip(0)  # (k/nb,(k+1)/nb]
    e = 0.0
    for k in range(nb):
        m = bins == k
        if m.any(): e += m.mean() * abs(corr[m].mean() - conf[m].mean())
    return e
def acc(p, y): return float(np.mean(p.argmax(1) == y))

# ---- calibrators (numpy only) ----
def fit_temp(z, y):
    # convex in 1/T; golden-section search on log T in [-3, 3]
    f = lambda lt: nll(softmax(z / np.exp(lt)), y)
    a, b = -3.0, 3.0; g = (np.sqrt(5) - 1) / 2
    c, d = b - g*(b-a), a + g*(b-a)
    for _ in range(100):
        if f(c) < f(d): b = d
        else: a = c
        c, d = b - g*(b-a), a + g*(b-a)
    return float(np.exp((a+b)/2))

def fit_vector(z, y, bias=True, lam=0.0, steps=3000, lr=0.05, w0=None):
    """z' = w*z + b, minimise mean NLL + lam*(||w-w0||^2 + ||b||^2). Adam.
    w0: the prior centre for w (default 1; we pass 1/T from the single
    temperature so the L2 shrinks toward temperature scaling)."""
    n, K = z.shape; Y = np.eye(K)[y]
    w0 = np.ones(K) if w0 is None else np.full(K, w0)
    w = w0.copy(); b = np.zeros(K)
    mw = np.zeros(K); vw = np.zeros(K); mb = np.zeros(K); vb = np.zeros(K)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        G = (softmax(w*z + b) - Y) / n
        gw = (G * z).sum(0) + 2*lam*(w - w0)
        gb = G.sum(0) + 2*lam*b
        mw = b1*mw + (1-b1)*gw; vw = b2*vw + (1-b2)*gw**2
        w -= lr * (mw/(1-b1**t)) / (np.sqrt(vw/(1-b2**t)) + eps)
        if bias:
            mb = b1*mb + (1-b1)*gb; vb = b2*vb + (1-b2)*gb**2
            b -= lr * (mb/(1-b1**t)) / (np.sqrt(vb/(1-b2**t)) + eps)
    return w, b

# ---- experiment ----
CGRID = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]
def model(C):
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=C, multi_class='multinomial', solver='lbfgs', max_iter=5000))

def logits(m, X):
    # sklearn multinomial binary case returns 1-d d; its probabilities are softmax([-d, d])
    d = m.decision_function(X)
    return np.c_[-d, d] if d.ndim == 1 else d

def run(name, path, evals, rng):
    D = split(load(path))
    Xtr, ltr = D['train']; classes = np.unique(ltr); ytr = np.searchsorted(classes, ltr)
    skf = StratifiedKFold(5, shuffle=True, random_state=int(os.environ.get('FOLD_SEED', '0')))
    folds = list(skf.split(Xtr, ytr))
    # choose C by 5-fold CV log-loss; collect OOF logits for every C
    best = None
    for C in CGRID:
        oof = np.zeros((len(ytr), len(classes)))
        for tr, te in folds:
            m = model(C).fit(Xtr[tr], ytr[tr]); oof[te] = logits(m, Xtr[te])
        L = nll(softmax(oof), ytr)
        if best is None or L < best[1]: best = (C, L, oof)
    C, cvL, oof = best
    final = model(C).fit(Xtr, ytr)
    T = fit_temp(oof, ytr)
    cal = {'uncal': lambda z: z, 'temp': lambda z: z / T}
    params = {'T': T}
    for lam in (0.0, 0.01):
        w, b = fit_vector(oof, ytr, bias=True, lam=lam, w0=1/T)
        cal['vector' + ('' if lam == 0 else '_l2')] = (lambda w, b: lambda z: w*z + b)(w, b)
        params['vector' + ('' if lam == 0 else '_l2')] = (w, b)
        w2, _ = fit_vector(oof, ytr, bias=False, lam=lam, w0=1/T)
        cal['perclassT' + ('' if lam == 0 else '_l2')] = (lambda w: lambda z: w*z)(w2)
        params['perclassT' + ('' if lam == 0 else '_l2')] = (1/w2,)
    print(f'\n=== {name}: classes={len(classes)} train={len(ytr)} C={C} cvNLL={cvL:.4f} T={T:.3f}')
    print('   OOF (train, in-sample for calibrators): ' + '  '.join(
        f'{k}: nll={nll(softmax(f(oof)), ytr):.4f} ece={ece(softmax(f(oof)), ytr):.4f}' for k, f in cal.items()))
    w, b = params['vector']; print('   vector w=', np.round(w, 2), ' b=', np.round(b, 2))
    print('   perclassT T_k=', np.round(params['perclassT'][0], 2))
    rows = []
    for sp in evals:
        Xe, le = D[sp]; ye = np.searchsorted(classes, le); ze = logits(final, Xe)
        P = {k: softmax(f(ze)) for k, f in cal.items()}
        n = len(ye); B = rng.integers(0, n, size=(1000, n))
        boot = {k: np.array([ece(p[i], ye[i]) for i in B]) for k, p in P.items()}
        bootL = {k: np.array([nll(p[i], ye[i]) for i in B]) for k, p in P.items()}
        bootA = {k: np.array([acc(p[i], ye[i]) for i in B]) for k, p in P.items()}
        print(f'  -- {name}/{sp} (n={n})')
        print(f'     {"method":12s} {"ECE":>7s} {"ECE 95% CI":>17s} {"NLL":>7s} {"acc":>6s}  '
              f'{"dECE vs temp [95%CI]":>26s} {"dNLL vs temp [95%CI]":>26s} {"dAcc vs temp [95%CI]":>24s}')
        for k, p in P.items():
            dE = boot[k] - boot['temp']; dL = bootL[k] - bootL['temp']
            lo, hi = np.percentile(boot[k], [2.5, 97.5])
            de = ece(p, ye) - ece(P['temp'], ye); dl = nll(p, ye) - nll(P['temp'], ye)
            dEs = '' if k == 'temp' else f'{de:+.4f} [{np.percentile(dE,2.5):+.4f},{np.percentile(dE,97.5):+.4f}]'
            dLs = '' if k == 'temp' else f'{dl:+.4f} [{np.percentile(dL,2.5):+.4f},{np.percentile(dL,97.5):+.4f}]'
            dA = bootA[k] - bootA['temp']; da = acc(p, ye) - acc(P['temp'], ye)
            dAs = '' if k == 'temp' else f'{da:+.3f} [{np.percentile(dA,2.5):+.3f},{np.percentile(dA,97.5):+.3f}]'
            print(f'     {k:12s} {ece(p, ye):7.4f} [{lo:.4f},{hi:.4f}] {nll(p, ye):7.4f} {acc(p, ye):6.3f}  {dEs:>26s} {dLs:>26s} {dAs:>24s}')
            rows.append((name, sp, k, ece(p, ye), lo, hi, nll(p, ye), acc(p, ye)))
    return rows

if __name__ == '__main__':
    rng = np.random.default_rng(12345)
    allrows = []
    for name, path, evals in [('fashion', os.path.join(sys.argv[1], 'fashion.shard'), ['val', 'test']),
                              ('hymenoptera', os.path.join(sys.argv[1], 'hym.shard'), ['val']),
                              ('caltech101_6', os.path.join(sys.argv[1], 'cal.shard'), ['test'])]:
        allrows += run(name, path, evals, rng)
        sys.stdout.flush()
