package nn

import "slices"

// fuse rewrites exported patterns into single kernels:
//   - Mul(x,x) -> Conv 1x1 -> Sqrt -> Div(x,.) or Mul(x,.): GDN / inverse GDN,
//     with a Mul(a, s) that makes x and feeds nothing else (the per-quality
//     scaler) folded in as the GDN's fourth input;
//   - Reshape(6-D) -> Transpose -> Reshape: DepthToSpace, as older opsets
//     export PixelShuffle;
//   - Conv -> Relu or LeakyRelu: the activation runs in the conv's store;
//   - Conv -> DepthToSpace: the conv's store writes the upsampled layout;
//   - Add(r, Conv) of a residual block: the conv's store adds r, in r's
//     buffer when r dies there, so the block's output costs no activation of
//     its own (at g_s's finest stage that is 25 MB of a decode's peak).
//
// A pattern is fused only when its intermediate values feed nothing else, and
// nothing is fused after a residual add (the conv's store adds last).
func fuse(nodes []onnxNode, inits []namedTensor) []onnxNode {
	consts := map[string]*Tensor{}
	for _, it := range inits {
		consts[it.name] = it.t
	}
	for _, n := range nodes {
		if n.opType == "Constant" && len(n.outputs) == 1 {
			if a, ok := n.attrs["value"]; ok && a.t != nil {
				consts[n.outputs[0]] = a.t
			}
		}
	}
	uses := map[string]int{}
	producer := map[string]int{}
	for i, n := range nodes {
		for _, in := range n.inputs {
			uses[in]++
		}
		for _, o := range n.outputs {
			producer[o] = i
		}
	}
	dead := make([]bool, len(nodes))
	// only returns the node producing name if its output has one consumer.
	only := func(name, opType string) (int, bool) {
		i, ok := producer[name]
		if !ok || dead[i] || uses[name] != 1 || nodes[i].opType != opType || len(nodes[i].outputs) != 1 || len(nodes[i].inputs) == 0 {
			return 0, false
		}
		if _, added := nodes[i].attrs["lvc.residual"]; added {
			return 0, false
		}
		return i, true
	}
	for i := range nodes {
		n := &nodes[i]
		switch n.opType {
		case "Div", "Mul":
			if len(n.inputs) != 2 {
				continue
			}
			sq, ok := only(n.inputs[1], "Sqrt")
			if !ok {
				continue
			}
			cv, ok := only(nodes[sq].inputs[0], "Conv")
			if !ok || len(nodes[cv].inputs) < 2 {
				continue
			}
			mul, ok := only(nodes[cv].inputs[0], "Mul")
			x := n.inputs[0]
			if !ok || len(nodes[mul].inputs) != 2 || nodes[mul].inputs[0] != x || nodes[mul].inputs[1] != x {
				continue
			}
			attrs := map[string]attribute{}
			for k, v := range nodes[cv].attrs {
				attrs[k] = v
			}
			if n.opType == "Mul" {
				attrs["inverse"] = attribute{i: 1}
			}
			inputs := append([]string{x}, nodes[cv].inputs[1:]...)
			// x feeds Mul(x,x) twice and this node once.
			if pre, ok := producer[x]; ok && !dead[pre] && uses[x] == 3 && len(inputs) == 3 &&
				nodes[pre].opType == "Mul" && len(nodes[pre].inputs) == 2 && len(nodes[pre].outputs) == 1 {
				inputs = append([]string{nodes[pre].inputs[0]}, append(inputs[1:], nodes[pre].inputs[1])...)
				dead[pre] = true
			}
			*n = onnxNode{name: n.name, opType: "lvc.GDN", inputs: inputs, outputs: n.outputs, attrs: attrs}
			dead[sq], dead[cv], dead[mul] = true, true, true
		case "Reshape":
			if len(n.inputs) != 2 {
				continue
			}
			tr, ok := only(n.inputs[0], "Transpose")
			if !ok {
				continue
			}
			rs, ok := only(nodes[tr].inputs[0], "Reshape")
			if !ok || len(nodes[rs].inputs) != 2 {
				continue
			}
			shape := consts[nodes[rs].inputs[1]]
			out := consts[n.inputs[1]]
			perm := nodes[tr].attrs["perm"].ints
			if shape == nil || out == nil || len(shape.Data) != 6 || len(out.Data) != 4 || len(perm) != 6 {
				continue
			}
			var mode string
			var block float32
			sd, od := shape.Data, out.Data
			switch {
			case slices.Equal(perm, []int64{0, 1, 4, 2, 5, 3}) && sd[2] == sd[3]:
				mode, block = "CRD", sd[2]
			case slices.Equal(perm, []int64{0, 3, 4, 1, 5, 2}) && sd[1] == sd[2]:
				mode, block = "DCR", sd[1]
			default:
				continue
			}
			// The reshapes must be [N, C*b*b, H, W] -> 6-D -> [N, C, H*b, W*b];
			// dimensions given as -1 or 0 are taken on trust, others checked.
			h, w := sd[4], sd[5]
			if block < 1 || (od[2] > 0 && h > 0 && od[2] != h*block) || (od[3] > 0 && w > 0 && od[3] != w*block) {
				continue
			}
			*n = onnxNode{name: n.name, opType: "DepthToSpace", inputs: nodes[rs].inputs[:1], outputs: n.outputs,
				attrs: map[string]attribute{"blocksize": {i: int64(block)}, "mode": {s: []byte(mode)}}}
			dead[tr], dead[rs] = true, true
		case "DepthToSpace":
			if len(n.inputs) != 1 {
				continue
			}
			cv, ok := only(n.inputs[0], "Conv")
			if g, has := nodes[cv].attrs["group"]; !ok || nodes[cv].attrs["lvc.d2s"].i != 0 || has && g.i != 1 {
				continue // the depthwise path has no fused store
			}
			attrs := map[string]attribute{}
			for k, v := range nodes[cv].attrs {
				attrs[k] = v
			}
			attrs["lvc.d2s"] = attribute{i: n.attrs["blocksize"].i, s: n.attrs["mode"].s}
			*n = onnxNode{name: n.name, opType: "Conv", inputs: nodes[cv].inputs, outputs: n.outputs, attrs: attrs}
			dead[cv] = true
		case "Add":
			if len(n.inputs) != 2 {
				continue
			}
			for j := range 2 {
				cv, ok := only(n.inputs[j], "Conv")
				r := n.inputs[1-j]
				if !ok || consts[r] != nil || r == "" || len(nodes[cv].inputs) < 2 || len(nodes[cv].inputs) > 3 {
					continue
				}
				a := nodes[cv].attrs
				if g, has := a["group"]; has && g.i != 1 || a["lvc.act"].i != 0 || a["lvc.d2s"].i != 0 {
					continue
				}
				attrs := map[string]attribute{"lvc.residual": {i: 1}}
				for k, v := range a {
					attrs[k] = v
				}
				inputs := append(append([]string{}, nodes[cv].inputs...), "", "")[:3]
				*n = onnxNode{name: n.name, opType: "Conv", inputs: append(inputs, r), outputs: n.outputs, attrs: attrs}
				dead[cv] = true
				break
			}
		case "Relu", "LeakyRelu":
			if len(n.inputs) != 1 {
				continue
			}
			cv, ok := only(n.inputs[0], "Conv")
			if !ok || nodes[cv].attrs["lvc.act"].i != 0 {
				continue
			}
			attrs := map[string]attribute{}
			for k, v := range nodes[cv].attrs {
				attrs[k] = v
			}
			act := attribute{i: int64(actRelu)}
			if n.opType == "LeakyRelu" {
				act = attribute{i: int64(actLeaky), f: 0.01}
				if a, ok := n.attrs["alpha"]; ok {
					act.f = a.f
				}
			}
			attrs["lvc.act"] = act
			*n = onnxNode{name: n.name, opType: "Conv", inputs: nodes[cv].inputs, outputs: n.outputs, attrs: attrs}
			dead[cv] = true
		}
	}
	out := nodes[:0:0]
	for i, n := range nodes {
		if !dead[i] {
			out = append(out, n)
		}
	}
	return out
}
