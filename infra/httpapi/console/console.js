// the support console
