"""The PLA (piecewise linear approximation) classifier as a scikit-learn estimator.

PLA imitates a trained network's trunk by black-box system identification: k-means splits the input
beats into ``k`` regions, and in each region a ridge regression maps the 140-sample beat to the
network's penultimate-layer output (its *features*). The network's last dense layer (the *head*)
is kept, so inference is: nearest centroid -> that cluster's affine map -> head -> argmax.

Being an ordinary estimator (parameters in ``__init__``, fitted attributes ending in ``_``) it can
be cloned, pickled and tuned by :class:`~sklearn.model_selection.GridSearchCV` over
``n_clusters`` (k) and ``alpha`` (lambda); the features to imitate come in as the per-sample fit
parameter ``teacher_features``, which the search slices per fold.

Variants (all off by default, i.e. the paper's PLA): the clustering and the per-cluster regression
are sub-estimators (``clusterer``, ``regressor``; cloned in ``fit``, tunable as
``clusterer__n_clusters``, ``regressor__alpha``); ``class_weight`` weights the beats of each class
in the regressions; ``partition="class"`` gives rare classes a centroid (piece) of their own;
``target="logits"`` fits the maps to the teacher's logits instead of its features;
``target="probabilities"`` distils: each map is a softmax regression onto the teacher's softened
class probabilities mixed with the labels; ``rank`` makes every map low rank, ``W_c = U_c V_c``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.linear_model import Ridge
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pla_tvm.pla.softmax_regression import SoftmaxRegression

#: What the per-cluster maps can be fitted to (``PLAClassifier``'s ``target``).
TARGETS: tuple[str, ...] = ("features", "logits", "probabilities")


class SmallClusterWarning(UserWarning):
    """k-means left a cluster with fewer beats than ``min_cluster_size``; k was lowered."""


def nearest_centroid(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for each row, as the deployed operator computes it.

    The score ``||mu_j||^2 - 2 x . mu_j`` drops the ``||x||^2`` term common to all clusters, which
    turns the distance into ``k`` dot products; ties go to the lowest index (``np.argmin``), the
    rule the TFLite model and the TVM operator follow.

    Parameters
    ----------
    X : np.ndarray
        ``[n, D]`` inputs.
    centroids : np.ndarray
        ``[k, D]`` cluster centres.

    Returns
    -------
    np.ndarray
        ``int64 [n]`` cluster indices.
    """
    scores = np.einsum("jd,jd->j", centroids, centroids)[None, :] - 2.0 * X @ centroids.T
    return np.argmin(scores, axis=1)


class PLAClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Piecewise linear approximation of a network's trunk, followed by the network's head.

    Parameters
    ----------
    n_clusters : int, default=3
        Number of k-means clusters ``k`` (one affine map each). Lowered during ``fit`` when a
        cluster would hold fewer than ``min_cluster_size`` beats (see ``n_clusters_``).
    alpha : float, default=1.0
        Ridge regularisation ``lambda`` of every cluster's map.
    head_weights : array-like of shape (d, n_classes), default=None
        Kernel of the network's last dense layer: ``logits = features @ head_weights + head_bias``.
        Required together with ``teacher_features`` in ``fit``. When both are ``None`` the
        estimator regresses onto the one-hot class labels and uses an identity head (a plain
        piecewise linear classifier; this is what scikit-learn's estimator checks exercise).
    head_bias : array-like of shape (n_classes,), default=None
        Bias of the last dense layer (zeros when ``head_weights`` is given without it).
    min_cluster_size : int, default=10
        Fewest training beats a cluster may hold. A smaller (or empty) cluster would get a map
        fitted to a handful of beats -- in effect a constant -- so k-means is refitted with one
        cluster fewer, a :class:`SmallClusterWarning` names the sizes, and ``n_clusters_`` records
        the k actually used.
    n_init : int, default=10
        k-means restarts (:class:`~sklearn.cluster.KMeans`'s ``n_init``).
    random_state : int, RandomState instance or None, default=None
        Seeds k-means (and a ``clusterer`` whose own ``random_state`` is None).
    clusterer : estimator, default=None
        Partition of the beats: an unfitted estimator with ``fit(X)`` and a fitted
        ``cluster_centers_`` ``[k, D]`` (beats then go to their nearest centre, as deployed), and
        an ``n_clusters`` parameter (lowered on small clusters). Cloned in ``fit``. None means
        ``KMeans(n_clusters, n_init)``; when given, ``n_clusters`` and ``n_init`` are not used.
    regressor : estimator, default=None
        Per-cluster linear regression: an unfitted estimator with ``fit(X, T, sample_weight)``
        and fitted ``coef_`` / ``intercept_`` (e.g. :class:`~sklearn.linear_model.Ridge`). Cloned
        per cluster. None means ``Ridge(alpha)``, or ``SoftmaxRegression(alpha)`` with
        ``target="probabilities"`` (a given regressor then gets the target distributions and
        must return logits); when given, ``alpha`` is not used (except as the ridge penalty of
        the rank reduction, and of the logits' class mean when distilling, when the regressor
        has no ``alpha`` of its own).
    class_weight : dict, "balanced" or None, default=None
        Weights of the beats in the regressions by their class (as
        :func:`~sklearn.utils.class_weight.compute_sample_weight`, over the whole training set):
        ``"balanced"`` weights each class by ``n / (C n_c)``, so rare classes count as much as
        common ones in the least squares. None: unweighted.
    partition : {"kmeans", "class"}, default="kmeans"
        ``"kmeans"``: the clusterer's centres only. ``"class"``: also the mean beat of every rare
        class (fewer training beats than ``n / C``, at least ``min_cluster_size``) as an extra
        centre, so that class's beats get a map of their own; an extra centre that attracts fewer
        than ``min_cluster_size`` beats is dropped. Beats are still assigned by nearest centre
        (labels are not needed at inference); ``n_clusters_`` counts the extra centres.
    target : {"features", "logits", "probabilities"}, default="features"
        What the maps imitate. ``"logits"``: ridge regressions from the beat to the teacher's
        logits minus the head bias (``Z @ head_weights``), pulled back to features through the
        head's pseudo-inverse (plus the cluster's mean feature in the head's null space), so the
        head reproduces the fitted logits exactly and ``coef_`` stays ``[k, D, d]``; the maps
        then have rank ``<= C``. Equal to ``"features"`` without a teacher (identity head).
        ``"probabilities"`` (distillation): each map is a
        :class:`~pla_tvm.pla.softmax_regression.SoftmaxRegression` (penalty ``alpha``) onto
        ``(1 - label_weight) softmax(logits / temperature) + label_weight onehot(y)``, the
        teacher's softened outputs mixed with the labels; its logits are scaled back by
        ``temperature``, shifted so their class mean is the teacher's on the cluster's beats,
        and pulled back to features as with ``"logits"``. Cross-entropy, not squared error, is
        the loss the classes are decided by. Without a teacher: multinomial logistic regression
        per cluster onto the labels.
    temperature : float, default=1.0
        Softening of the teacher's logits for ``target="probabilities"`` (``> 0``; higher
        spreads the probabilities over more classes).
    label_weight : float, default=0.0
        Weight of the one-hot labels in the ``"probabilities"`` targets (``0..1``; 1 ignores the
        teacher).
    rank : int or None, default=None
        Rank ``r`` of every map: reduced-rank ridge (the regression's fit projected on the top
        ``r`` right singular vectors of its ``[sqrt(w) X_c W; sqrt(alpha) W]``, which is the exact
        reduced-rank ridge solution for a ``Ridge`` regressor), ``W_c = U_c V_c`` with
        ``U_c [D, r]``, ``V_c [r, d]``; the intercept is refitted for the reduced map. The rank
        is taken in the regression's target space (``d`` features, or ``C`` logits with
        ``target="logits"``, where ``r = min(rank, C)``); a rank of at least ``min(D, targets)``
        gives the full map. None: full rank.
    weight_bits : {8, 4}, default=8
        Width of the deployed cluster-map weights (both factors of a low-rank map): 8, or 4
        (signed 4-bit, symmetric per output channel, packed two per byte by the operator). The
        float fit does not depend on it; :func:`~pla_tvm.pla.quantize.quantize_pla` and the size
        of the deployed model (:class:`~pla_tvm.pla.costs.PLAShape`) do.

    Attributes
    ----------
    classes_ : np.ndarray of shape (n_classes,)
        Class labels (``0..C-1`` with a teacher head, else the sorted labels seen in ``fit``).
    n_clusters_ : int
        Clusters actually used (``<= n_clusters``).
    cluster_sizes_ : np.ndarray of shape (n_clusters_,)
        Training beats in each cluster.
    centroids_ : np.ndarray of shape (n_clusters_, n_features_in_)
        k-means centres.
    coef_ : np.ndarray of shape (n_clusters_, n_features_in_, d)
        Per-cluster linear maps (``features = x @ coef_[c] + intercept_[c]``).
    intercept_ : np.ndarray of shape (n_clusters_, d)
        Per-cluster offsets.
    coef_left_ : np.ndarray of shape (n_clusters_, n_features_in_, r) or None
        ``U_c`` of the low-rank maps (``coef_ = coef_left_ @ coef_right_``); None when ``rank``
        is None.
    coef_right_ : np.ndarray of shape (n_clusters_, r, d) or None
        ``V_c`` of the low-rank maps; None when ``rank`` is None.
    n_extra_clusters_ : int
        Centres added by ``partition="class"`` (the last ones of ``centroids_``).
    head_weights_ : np.ndarray of shape (d, n_classes)
        Head kernel used by ``predict``.
    head_bias_ : np.ndarray of shape (n_classes,)
        Head bias.
    n_features_in_ : int
        Input length seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from pla_tvm.pla import PLAClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)); y = (X[:, 0] > 0).astype(int)
    >>> PLAClassifier(n_clusters=2, alpha=0.1, random_state=0).fit(X, y).score(X, y) > 0.9
    True
    """

    def __init__(self, n_clusters: int = 3, alpha: float = 1.0, *, head_weights=None,
                 head_bias=None, min_cluster_size: int = 10, n_init: int = 10,
                 random_state=None, clusterer=None, regressor=None, class_weight=None,
                 partition: str = "kmeans", target: str = "features",
                 temperature: float = 1.0, label_weight: float = 0.0, rank: int | None = None,
                 weight_bits: int = 8):
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.head_weights = head_weights
        self.head_bias = head_bias
        self.min_cluster_size = min_cluster_size
        self.n_init = n_init
        self.random_state = random_state
        self.clusterer = clusterer
        self.regressor = regressor
        self.class_weight = class_weight
        self.partition = partition
        self.target = target
        self.temperature = temperature
        self.label_weight = label_weight
        self.rank = rank
        self.weight_bits = weight_bits

    def fit(self, X, y, teacher_features=None) -> PLAClassifier:
        """Cluster the beats and fit one ridge map per cluster.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input beats.
        y : array-like of shape (n_samples,)
            Class labels: the one-hot regression targets without a teacher, otherwise only
            checked against the head's classes (``0..C-1``) and used by ``score``.
        teacher_features : array-like of shape (n_samples, d), default=None
            The network's penultimate-layer outputs to imitate; requires ``head_weights``.

        Returns
        -------
        PLAClassifier
            The fitted estimator.

        Raises
        ------
        ValueError
            If a parameter is out of range, there are fewer beats than clusters, or the teacher
            features and head do not fit together.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._check_params(X.shape[0])
        features = self._targets(X, y, teacher_features)
        weights = (None if self.class_weight is None
                   else compute_sample_weight(self.class_weight, y))
        self.centroids_, labels, self.n_extra_clusters_ = self._cluster(
            X, y, check_random_state(self.random_state))
        self.n_clusters_ = self.centroids_.shape[0]
        self.cluster_sizes_ = np.bincount(labels, minlength=self.n_clusters_)
        if self.target == "features":
            targets, pullback = features, None
        else:
            targets = features @ self.head_weights_
            pullback = np.linalg.pinv(self.head_weights_)  # [C, d]; pullback @ head = I_C
        if self.target == "probabilities":
            logits = targets  # the teacher's logits minus the head bias
            targets = (1.0 - self.label_weight) * softmax(
                (logits + self.head_bias_) / self.temperature, axis=1)
            targets += self.label_weight * (y[:, None] == self.classes_[None, :])
        maps = [self._fit_map(X[labels == c], targets[labels == c], features[labels == c],
                              None if weights is None else weights[labels == c], pullback,
                              None if self.target != "probabilities" else logits[labels == c])
                for c in range(self.n_clusters_)]
        self.coef_ = np.stack([m[0] for m in maps])
        self.intercept_ = np.stack([m[1] for m in maps])
        if self.rank is None:
            self.coef_left_ = self.coef_right_ = None
        else:
            self.coef_left_ = np.stack([m[2] for m in maps])
            self.coef_right_ = np.stack([m[3] for m in maps])
        return self

    def _regressor(self):
        if self.regressor is not None:
            return clone(self.regressor)
        if self.target == "probabilities":
            return SoftmaxRegression(alpha=self.alpha)
        return Ridge(alpha=self.alpha)

    def _fit_map(self, X: np.ndarray, targets: np.ndarray, features: np.ndarray,
                 weights: np.ndarray | None, pullback: np.ndarray | None,
                 teacher_logits: np.ndarray | None = None) -> tuple:
        """One cluster's map: ``(coef [D, d], intercept [d], U [D, r] | None, V [r, d] | None)``.

        ``teacher_logits`` (``target="probabilities"``): the teacher's logits minus the head
        bias on the cluster's beats; the fitted logits are rescaled and shifted to them.
        """
        regressor = self._regressor()
        fit_params = {} if weights is None else {"sample_weight": weights}
        regressor.fit(X, targets, **fit_params)
        # Ridge drops the target axis when there is a single target; keep it.
        coef = np.asarray(regressor.coef_, dtype=np.float64).reshape(targets.shape[1], -1).T
        intercept = np.reshape(np.asarray(regressor.intercept_, dtype=np.float64), -1)
        intercept = np.broadcast_to(intercept, (targets.shape[1],)).copy()
        penalty = float(np.mean(getattr(regressor, "alpha", self.alpha)))
        if teacher_logits is not None:
            # Softened logits -> the teacher's scale, minus the head bias. The softmax cannot see
            # the logits' mean over the classes; that part is a ridge fit of the teacher's.
            coef = (coef - coef.mean(axis=1, keepdims=True)) * self.temperature
            intercept = (intercept - intercept.mean()) * self.temperature - (
                self.head_bias_ - self.head_bias_.mean())
            mean = Ridge(alpha=penalty).fit(X, teacher_logits.mean(axis=1), **fit_params)
            coef += mean.coef_[:, None]
            intercept += mean.intercept_
            targets = X @ coef + intercept  # what the rank reduction below approximates
        left = right = None
        if self.rank is not None:
            w = np.ones(len(X)) if weights is None else weights
            x_mean = np.average(X, axis=0, weights=w)
            t_mean = np.average(targets, axis=0, weights=w)
            stacked = np.vstack([np.sqrt(w)[:, None] * (X - x_mean) @ coef,
                                 np.sqrt(penalty) * coef])
            vt = np.linalg.svd(stacked, full_matrices=False)[2][:self.rank]  # [r, targets]
            left, right = coef @ vt.T, vt
            coef = left @ right
            if getattr(regressor, "fit_intercept", True):
                intercept = t_mean - x_mean @ coef
        if pullback is not None:  # logits -> features: min-norm pre-image + null-space mean
            w = np.ones(len(X)) if weights is None else weights
            null = np.eye(pullback.shape[1]) - self.head_weights_ @ pullback
            intercept = intercept @ pullback + np.average(features, axis=0, weights=w) @ null
            coef = coef @ pullback
            if right is not None:
                right = right @ pullback
        return coef, intercept, left, right

    def _check_params(self, n_samples: int) -> None:
        for name in ("n_clusters", "min_cluster_size", "n_init"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}={value!r} should be an integer >= 1.")
        if not np.isscalar(self.alpha) or not self.alpha >= 0:
            raise ValueError(f"alpha={self.alpha!r} should be a number >= 0.")
        if self.partition not in ("kmeans", "class"):
            raise ValueError(f"partition={self.partition!r} should be 'kmeans' or 'class'.")
        if self.target not in TARGETS:
            raise ValueError(f"target={self.target!r} should be one of {', '.join(TARGETS)}.")
        if not np.isscalar(self.temperature) or not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r} should be a number > 0.")
        if not np.isscalar(self.label_weight) or not 0 <= self.label_weight <= 1:
            raise ValueError(f"label_weight={self.label_weight!r} should be a number in [0, 1].")
        if self.rank is not None and (not isinstance(self.rank, (int, np.integer))
                                      or self.rank < 1):
            raise ValueError(f"rank={self.rank!r} should be None or an integer >= 1.")
        if self.weight_bits not in (8, 4):
            raise ValueError(f"weight_bits={self.weight_bits!r} should be 8 or 4.")
        if self.clusterer is not None and not hasattr(self.clusterer, "fit"):
            raise ValueError(f"clusterer={self.clusterer!r} should be an estimator with fit(X).")
        if self.regressor is not None and not hasattr(self.regressor, "fit"):
            raise ValueError(f"regressor={self.regressor!r} should be an estimator with "
                             f"fit(X, y).")
        k = self._initial_k()
        if n_samples < k:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={k}.")

    def _initial_k(self) -> int:
        if self.clusterer is None:
            return self.n_clusters
        k = self.clusterer.get_params().get("n_clusters")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"clusterer={self.clusterer!r} should have an integer parameter "
                             f"n_clusters >= 1, got {k!r}.")
        return int(k)

    def _targets(self, X: np.ndarray, y: np.ndarray, teacher_features) -> np.ndarray:
        """Set classes_ and the head; return the regression targets."""
        if teacher_features is None:
            if self.head_weights is not None:
                raise ValueError("head_weights is set but fit got no teacher_features: the "
                                 "head needs the features it was trained on.")
            self.classes_, encoded = np.unique(y, return_inverse=True)
            n_classes = self.classes_.size
            if self.target == "probabilities" and n_classes < 2:
                raise ValueError(f"target='probabilities' needs at least 2 classes in y, got "
                                 f"one class ({self.classes_[0]!r}).")
            self.head_weights_ = np.eye(n_classes)
            self.head_bias_ = np.zeros(n_classes)
            return self.head_weights_[encoded]
        if self.head_weights is None:
            raise ValueError("teacher_features were given but head_weights is None: PLA "
                             "imitates the features and keeps the teacher's head.")
        features = np.asarray(teacher_features, dtype=np.float64)
        head = np.asarray(self.head_weights, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] != X.shape[0]:
            raise ValueError(f"teacher_features should have shape ({X.shape[0]}, d), got "
                             f"{features.shape}.")
        if head.ndim != 2 or head.shape[0] != features.shape[1]:
            raise ValueError(f"head_weights should have shape (d={features.shape[1]}, "
                             f"n_classes), got {head.shape}.")
        bias = (np.zeros(head.shape[1]) if self.head_bias is None
                else np.asarray(self.head_bias, dtype=np.float64))
        if bias.shape != (head.shape[1],):
            raise ValueError(f"head_bias should have shape ({head.shape[1]},), got {bias.shape}.")
        self.classes_ = np.arange(head.shape[1])
        if not np.isin(y, self.classes_).all():
            raise ValueError(f"y should hold the head's class indices 0..{head.shape[1] - 1}, "
                             f"got {np.unique(y)[~np.isin(np.unique(y), self.classes_)]}.")
        self.head_weights_, self.head_bias_ = head, bias
        return features

    def _clusterer(self, n_clusters: int, rng: np.random.RandomState):
        seed = rng.randint(np.iinfo(np.int32).max)
        if self.clusterer is None:
            return KMeans(n_clusters=n_clusters, n_init=self.n_init, random_state=seed)
        clusterer = clone(self.clusterer).set_params(n_clusters=n_clusters)
        if "random_state" in clusterer.get_params() and clusterer.random_state is None:
            clusterer.set_params(random_state=seed)
        return clusterer

    def _class_centroids(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Mean beat of each rare class (fewer than n / C beats, at least min_cluster_size)."""
        classes, counts = np.unique(y, return_counts=True)
        rare = classes[(counts < len(y) / classes.size) & (counts >= self.min_cluster_size)]
        return np.array([X[y == c].mean(axis=0) for c in rare]).reshape(-1, X.shape[1])

    def _cluster(self, X: np.ndarray, y: np.ndarray,
                 rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, int]:
        """Centres, labels and the number of extra (class) centres, lowering k until every
        clusterer cluster holds ``min_cluster_size`` beats (or k = 1)."""
        n_clusters = self._initial_k()
        extra_all = (self._class_centroids(X, y) if self.partition == "class"
                     else np.empty((0, X.shape[1])))
        while True:
            clusterer = self._clusterer(n_clusters, rng)
            with warnings.catch_warnings():
                # Duplicate beats can leave fewer distinct clusters than asked; the size check
                # below handles that case.
                warnings.filterwarnings("ignore", message="Number of distinct clusters")
                clusterer.fit(X)
            if not hasattr(clusterer, "cluster_centers_"):
                raise ValueError(f"clusterer={self.clusterer!r} has no cluster_centers_ after "
                                 f"fit: PLA assigns beats to the nearest centre.")
            centroids = np.asarray(clusterer.cluster_centers_, dtype=np.float64)
            extra = extra_all
            while True:  # drop extra centres that attract too few beats, smallest first
                labels = nearest_centroid(X, np.vstack([centroids, extra]))
                sizes = np.bincount(labels, minlength=len(centroids) + len(extra))
                extra_sizes = sizes[len(centroids):]
                if extra_sizes.size == 0 or extra_sizes.min() >= self.min_cluster_size:
                    break
                extra = np.delete(extra, np.argmin(extra_sizes), axis=0)
            if sizes[:len(centroids)].min() >= self.min_cluster_size or n_clusters == 1:
                return np.vstack([centroids, extra]), labels, len(extra)
            warnings.warn(f"k={n_clusters} gives cluster sizes {sizes.tolist()}, below "
                          f"min_cluster_size={self.min_cluster_size}; refitting with "
                          f"k={n_clusters - 1}.", SmallClusterWarning, stacklevel=3)
            n_clusters -= 1

    def cluster_index(self, X) -> np.ndarray:
        """Index of each beat's nearest centroid (the cluster whose map applies).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        np.ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return nearest_centroid(X, self.centroids_)

    def transform(self, X) -> np.ndarray:
        """The imitated features: each beat through its cluster's affine map.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        np.ndarray of shape (n_samples, d)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        cluster = nearest_centroid(X, self.centroids_)
        if getattr(self, "coef_left_", None) is not None:  # (x @ U_c) @ V_c + b_c
            hidden = np.einsum("ni,nir->nr", X, self.coef_left_[cluster])
            return np.einsum("nr,nro->no", hidden, self.coef_right_[cluster]) + self.intercept_[
                cluster]
        return np.einsum("ni,nio->no", X, self.coef_[cluster]) + self.intercept_[cluster]

    def logits(self, X) -> np.ndarray:
        """Head outputs before the softmax.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        np.ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.transform(X) @ self.head_weights_ + self.head_bias_

    def predict(self, X) -> np.ndarray:
        """Class of each beat: argmax of the logits (lowest class index on ties).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        np.ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.logits(X), axis=1)]

    @classmethod
    def from_arrays(cls, centroids, coef, intercept, head_weights, head_bias, *,
                    alpha: float = 1.0, classes=None, coef_left=None,
                    coef_right=None, weight_bits: int = 8) -> PLAClassifier:
        """A fitted estimator from saved arrays (used when loading a ``.npz``).

        Parameters
        ----------
        centroids : array-like of shape (k, D)
        coef : array-like of shape (k, D, d)
        intercept : array-like of shape (k, d)
        head_weights : array-like of shape (d, C)
        head_bias : array-like of shape (C,)
        alpha : float, default=1.0
            The lambda the maps were fitted with (kept as the parameter).
        classes : array-like of shape (C,), default=None
            Class labels; ``0..C-1`` when None.
        coef_left, coef_right : array-like of shape (k, D, r) and (k, r, d), default=None
            The low-rank factors of a model fitted with ``rank`` (both or neither); ``rank`` is
            then ``r``.
        weight_bits : {8, 4}, default=8
            The deployed maps' width (kept as the parameter).

        Returns
        -------
        PLAClassifier
            An estimator that predicts without ``fit``; refitting it needs teacher features.
        """
        head_weights = np.asarray(head_weights, dtype=np.float64)
        head_bias = np.asarray(head_bias, dtype=np.float64)
        model = cls(n_clusters=len(centroids), alpha=alpha, head_weights=head_weights,
                    head_bias=head_bias, weight_bits=weight_bits)
        model.centroids_ = np.asarray(centroids, dtype=np.float64)
        model.coef_ = np.asarray(coef, dtype=np.float64)
        model.intercept_ = np.asarray(intercept, dtype=np.float64)
        model.head_weights_, model.head_bias_ = head_weights, head_bias
        model.classes_ = (np.arange(head_bias.size) if classes is None else np.asarray(classes))
        model.n_clusters_ = model.centroids_.shape[0]
        model.coef_left_ = model.coef_right_ = None
        if (coef_left is None) != (coef_right is None):
            raise ValueError("coef_left and coef_right should be given together.")
        if coef_left is not None:
            model.coef_left_ = np.asarray(coef_left, dtype=np.float64)
            model.coef_right_ = np.asarray(coef_right, dtype=np.float64)
            model.rank = int(model.coef_left_.shape[2])
        model.n_extra_clusters_ = 0
        model.n_features_in_ = model.centroids_.shape[1]
        return model
